#!/usr/bin/env bash
# Builds the .rpm from the dist binaries and this checkout with rpmbuild (packaging/rpm/
# aether-vault-agent.spec): target/rpm/aether-vault-agent-<version>-1.<arch>.rpm. Build the
# binaries first (cargo build --profile dist; cargo deb --profile dist does too).
# Needs rpmbuild (Debian: apt install rpm; RHEL: dnf install rpm-build).
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
bindir=${AV_RPM_BINDIR:-$src/target/dist}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
for b in aether-vault-agent aether-vault; do
	[[ -x $bindir/$b ]] || {
		echo "build.sh: $bindir/$b is missing: run cargo build --profile dist first" >&2
		exit 1
	}
done
top=$src/target/rpm/build
rm -rf "$top"
mkdir -p "$top"
rpmbuild -bb --quiet \
	--define "_topdir $top" \
	--define "pkgversion $version" \
	--define "srcdir $src" \
	--define "bindir $bindir" \
	packaging/rpm/aether-vault-agent.spec
out=$(find "$top/RPMS" -name "aether-vault-agent-$version-1.*.rpm" | head -1)
[[ -n $out ]] || {
	echo "build.sh: rpmbuild made no package" >&2
	exit 1
}
mv "$out" target/rpm/
rm -rf "$top"
echo "target/rpm/$(basename "$out")"
