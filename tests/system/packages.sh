#!/usr/bin/env bash
# System test of the packages and the systemd units (root only; run by .ci/run, or by hand):
#
#  1. builds the .deb (cargo deb) and the .rpm (rpmbuild: packaging/rpm/build.sh); lintian on
#     the .deb; the packages' dependencies (systemd, glibc 2.34) and the .rpm's description;
#  2. boots a real systemd as PID 1 in a private PID and mount namespace (tests/system/pid1.sh);
#  3. installs the .deb: both sockets (the agent's, 0666, and the credentials socket, 0600) are
#     enabled and listening, the service is not running; a request as `nobody` through the CLI
#     socket-activates the service and is answered per an installed test policy;
#  4. changes the policy and runs `systemctl reload`: the new policy is in force on return;
#  5. `journalctl -u aether-vault-agent -o json` carries the structured AV_* fields, and the
#     policy load's directory and counts in MESSAGE;
#  5b. `aether-vault doctor` passes on the packaged setup (units, files of the aether-vault
#     user) and names a group-writable policy file with its fix;
#  6. with WatchdogSec=2s in a runtime drop-in, SIGSTOPs the agent: systemd restarts it and a
#     capability granted before is still valid; a root-owned state file is refused with the
#     file and the fix in the journal;
#  6d. systemd credentials (LoadCredential= from the agent's socket): tests/system/credentials.sh;
#  6e. telemetry.listen: the shipped sandbox keeps it from binding (logged, the agent serves on);
#      with packaging/systemd-examples/telemetry.conf, GET /health and /metrics answer 200;
#  7. `systemd-analyze security` scores 1.5 or lower; `systemd-analyze verify` on the units;
#  8. `systemctl stop` ends it cleanly (exit 0, audit chain intact); `dpkg --purge` leaves no
#     file of ours behind;
#  9. installs the .rpm into a scratch root with `rpm --root` (scriptlets run there) and checks
#     its files, the user, directories and unit enablement, then erases it.
#
# Needs: cargo-deb, rpmbuild (Debian's rpm), lintian, jq, util-linux (setpriv, nsenter, unshare).
# AV_SKIP_BUILD=1 reuses packages already in target/.
#
# Works from any checkout path: the booted systemd has its own /tmp (and /run), so what must be
# read inside its namespace (the .deb; credentials.sh stages its own files) is staged under
# /var/tmp first, never read from the checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
[[ $(id -u) == 0 ]] || {
	echo "packages.sh: needs root" >&2
	exit 2
}

export AV_PID1_STATE=${AV_PID1_STATE:-/var/tmp/av-pid1}
pid1=$repo/tests/system/pid1.sh
svc=aether-vault-agent.service
sock=aether-vault-agent.socket
csock=aether-vault-agent-credentials.socket
work=$(mktemp -d /var/tmp/av-system.XXXXXX)
passed=0

step() { printf '\n== %s\n' "$*"; }
ok() {
	passed=$((passed + 1))
	printf '   ok: %s\n' "$*"
}
fail() {
	printf '   FAIL: %s\n' "$*" >&2
	if "$pid1" exec true 2>/dev/null; then
		echo "--- systemctl status" >&2
		"$pid1" exec systemctl --no-pager status "$sock" "$csock" "$svc" >&2 || true
		echo "--- journal" >&2
		"$pid1" exec journalctl --no-pager -n 60 -u "$svc" -u "$sock" -u "$csock" >&2 || true
	fi
	exit 1
}
in1() { "$pid1" exec "$@"; }
# The CLI as the unprivileged user `nobody`, inside the namespace.
as_nobody() { in1 setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/aether-vault "$@"; }
show() { in1 systemctl show -P "$2" "$1"; }

cleanup() {
	set +e
	if "$pid1" exec true 2>/dev/null; then
		in1 systemctl stop "$sock" "$csock" "$svc" >/dev/null 2>&1
		if in1 dpkg -s aether-vault-agent >/dev/null 2>&1; then in1 dpkg --purge aether-vault-agent >/dev/null 2>&1; fi
		"$pid1" stop >/dev/null
	elif dpkg -s aether-vault-agent >/dev/null 2>&1; then
		dpkg --purge aether-vault-agent >/dev/null 2>&1
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# --- 1. build -----------------------------------------------------------------------------
step "1. build the .deb and the .rpm"
if [[ ${AV_SKIP_BUILD:-0} != 1 ]]; then
	cargo deb --profile dist
	packaging/rpm/build.sh >/dev/null
fi
deb=$(ls -t target/debian/aether-vault-agent_*.deb | head -1)
rpm=$(ls -t target/rpm/aether-vault-agent-*.rpm | head -1)
[[ -f $deb && -f $rpm ]] || fail "packages not built"
ok "$deb ($(stat -c %s "$deb") bytes), $rpm ($(stat -c %s "$rpm") bytes)"
# What the namespace installs: a copy outside the checkout (which may be under /tmp).
staged_deb=$work/$(basename "$deb")
cp "$deb" "$staged_deb"

# yaml-rust2 shares libyaml's error strings (lintian's embedded-library check; overridden in
# packaging/lintian-overrides): make sure no real libyaml is in the build.
if cargo tree -e normal --prefix none | grep -Ei '^(unsafe-)?libyaml|yaml-sys'; then
	fail "a C libyaml is in the dependency tree"
fi
lintian --version >/dev/null
lintian_out=$(lintian --tag-display-limit 0 "$deb" 2>&1 || true)
printf '%s\n' "$lintian_out" | sed 's/^/   lintian: /'
if grep -q '^E: ' <<<"$lintian_out"; then fail "lintian reports errors"; fi
ok "lintian: no errors ($(grep -c '^W: ' <<<"$lintian_out" || true) warnings)"

# Every shipped path must be one the maintainer scripts and tests expect.
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/aether-vault-agent ./usr/bin/aether-vault \
	./usr/lib/systemd/system/$svc ./usr/lib/systemd/system/$sock ./usr/lib/systemd/system/$csock \
	./usr/lib/sysusers.d/aether-vault-agent.conf ./usr/lib/tmpfiles.d/aether-vault-agent.conf \
	./etc/aether-vault/agent.yaml ./usr/share/man/man8/aether-vault-agent.8.gz \
	./usr/share/man/man1/aether-vault.1.gz ./usr/share/man/man5/aether-vault-agent.yaml.5.gz \
	./usr/share/man/man5/aether-vault-policy.5.gz \
	./usr/share/bash-completion/completions/aether-vault \
	./usr/share/zsh/vendor-completions/_aether-vault \
	./usr/share/fish/vendor_completions.d/aether-vault.fish \
	./usr/share/doc/aether-vault-agent/copyright ./usr/share/doc/aether-vault-agent/README.md \
	./usr/share/doc/aether-vault-agent/examples/ptrace.conf \
	./usr/share/doc/aether-vault-agent/examples/vault.conf \
	./usr/share/doc/aether-vault-agent/examples/telemetry.conf \
	./usr/share/doc/aether-vault-agent/examples/service-credentials.conf; do
	grep -qxF "$f" <<<"$contents" || fail "the .deb lacks $f"
done
# (Outputs are captured before grep -q: with pipefail, grep -q's early exit fails the writer.)
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/aether-vault/agent.yaml <<<"$conffiles" || fail "/etc/aether-vault/agent.yaml is not a conffile"
ok "the .deb ships binaries, units, sysusers/tmpfiles, conffile, man pages, completions, docs"
# The glibc floor (packaging/README.md): the binaries need GLIBC_2.34 symbols, and both
# packages say so (dpkg-shlibdeps and rpmbuild compute it from the binaries).
depends=$(dpkg-deb -f "$deb" Depends)
[[ $depends == *"libc6 (>= 2.34)"* && $depends == *systemd* ]] || fail "the .deb's Depends: $depends"
rpm_requires=$(rpm -qp --requires "$rpm" 2>/dev/null)
grep -qx 'systemd' <<<"$rpm_requires" || fail "the .rpm does not require systemd: $rpm_requires"
grep -qF 'libc.so.6(GLIBC_2.34)(64bit)' <<<"$rpm_requires" || fail "the .rpm does not require glibc 2.34: $rpm_requires"
ok "Depends: $depends; the .rpm requires systemd and libc.so.6(GLIBC_2.34)"
# The .rpm's description is its own, several lines, not the summary again.
summary=$(rpm -qp --queryformat '%{SUMMARY}' "$rpm" 2>/dev/null)
description=$(rpm -qp --queryformat '%{DESCRIPTION}' "$rpm" 2>/dev/null)
[[ $description != "$summary" && $(wc -l <<<"$description") -ge 5 ]] ||
	fail "the .rpm's description: $description"
[[ $description == *"hash-chained audit log"* && $description == *"denies"*"until a policy"* ]] ||
	fail "the .rpm's description lacks what the agent does or that it denies without a policy: $description"
# The same files as the .deb (the .deb's own copyright, changelog and lintian overrides aside;
# the .deb compresses man pages; the .rpm ships the license in /usr/share/licenses).
deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print substr($6, 2)}' |
	grep -v -e '/copyright$' -e '/changelog.Debian.gz$' -e '^/usr/share/lintian/' -e '^/usr/share/zsh/' |
	sed 's/\.gz$//' | sort)
rpm_files=$(rpm -qp --queryformat '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" 2>/dev/null |
	awk '$1 !~ /^d/ {print $2}' | grep -v -e '^/usr/share/licenses/' -e '^/usr/share/zsh/' | sort)
[[ $deb_files == "$rpm_files" ]] || fail "the .deb and the .rpm ship different files: $(diff <(echo "$deb_files") <(echo "$rpm_files"))"
ok "the .rpm has a description of its own ($(wc -l <<<"$description") lines) and ships the .deb's files"

# --- 2. boot --------------------------------------------------------------------------------
step "2. boot systemd as PID 1 in a private namespace"
"$pid1" stop >/dev/null
"$pid1" start
# A container image's /usr/sbin/policy-rc.d (Docker's says "exit 101") forbids maintainer
# scripts to start services, which deb-systemd-invoke rightly obeys. Inside the namespace this
# is a host whose services may start.
if [[ -e /usr/sbin/policy-rc.d ]]; then
	printf '#!/bin/sh\nexit 0\n' >"$work/policy-rc.d"
	chmod 755 "$work/policy-rc.d"
	in1 mount --bind "$work/policy-rc.d" /usr/sbin/policy-rc.d
fi
ok "systemd is PID 1 of its namespace"

# --- 3. install, socket activation --------------------------------------------------------
step "3. install the .deb; socket activation"
in1 dpkg -i "$staged_deb" >"$work/dpkg.log" 2>&1 || {
	cat "$work/dpkg.log" >&2
	fail "dpkg -i"
}
getent passwd aether-vault >/dev/null || fail "no aether-vault user"
getent group aether-vault-admin >/dev/null || fail "no aether-vault-admin group"
[[ $(stat -c '%U %a' /var/lib/aether-vault) == "aether-vault 700" ]] || fail "/var/lib/aether-vault: $(stat -c '%U %a' /var/lib/aether-vault)"
[[ $(show $sock UnitFileState) == enabled ]] || fail "socket not enabled"
[[ $(show $sock ActiveState) == active ]] || fail "socket not active"
[[ $(show $svc ActiveState) == inactive ]] || fail "service runs before any client"
[[ $(in1 stat -c %a /run/aether-vault/agent.sock) == 666 ]] || fail "socket mode"
[[ $(show $csock UnitFileState) == enabled ]] || fail "credentials socket not enabled"
[[ $(show $csock ActiveState) == active ]] || fail "credentials socket not active"
[[ $(in1 stat -c '%U %G %a' /run/aether-vault/credentials.sock) == "root root 600" ]] ||
	fail "credentials socket: $(in1 stat -c '%U %G %a' /run/aether-vault/credentials.sock), not root root 600"
[[ $(show $csock Triggers) == "$svc" ]] || fail "the credentials socket triggers '$(show $csock Triggers)'"
ok "user and groups exist; sockets enabled and listening (agent 0666, credentials root 0600, both start $svc); service not running"
grep -qF 'standard mode, which denies every request until a policy allows it' "$work/dpkg.log" ||
	fail "installing without a policy did not say that the agent denies everything: $(cat "$work/dpkg.log")"
ok "installing said: $(grep -F 'no policy file' "$work/dpkg.log")"

in1 tee /etc/aether-vault/policies.d/50-systest.yaml >/dev/null <<'EOF'
id: systest
name: System test
version: "1.0"
rules:
  - id: nobody-reads-systest
    effect: allow
    resources: ["secret:/systest/*"]
    actions: ["read"]
    identities: ["uid:65534"]
EOF
out=$(as_nobody capability request --resource secret:/systest/db --action read --format json) ||
	fail "request as nobody was not granted: $out"
[[ $(jq -r .status <<<"$out") == granted ]] || fail "not granted: $out"
cap=$(jq -r .capability.id <<<"$out")
[[ $(show $svc ActiveState) == active ]] || fail "the service was not started by the request"
[[ $(show $svc NRestarts) == 0 ]] || fail "restarts before the watchdog test"
rc=0
as_nobody capability request --resource secret:/other/db --action read >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "a request outside the policy exited $rc, not 2 (denied)"
in1 journalctl --no-pager -u $svc -o json | jq -e -s 'map(select(.ACTIVATED == "true")) | length >= 1' >/dev/null ||
	fail "the journal does not say the socket was inherited from systemd"
ok "a request as nobody started the service through the socket; granted $cap; other resource denied (exit 2)"
status_text=$(show $svc StatusText)
[[ $status_text == *"policy generation"* ]] || fail "StatusText: $status_text"
ok "systemctl status shows: $status_text"

# --- 4. reload ----------------------------------------------------------------------------
step "4. systemctl reload: the new policy is in force when it returns"
gen_before=$(in1 /usr/bin/aether-vault agent status --format json | jq .policy_generation)
in1 sed -i 's/actions: \["read"\]/actions: ["read", "write"]/' /etc/aether-vault/policies.d/50-systest.yaml
in1 systemctl reload $svc
# No sleep: had the reload returned before the agent re-read the policy, this write is denied.
out=$(as_nobody capability request --resource secret:/systest/db --action write --format json) ||
	fail "write not granted right after reload: $out"
gen_after=$(in1 /usr/bin/aether-vault agent status --format json | jq .policy_generation)
((gen_after > gen_before)) || fail "policy generation $gen_before -> $gen_after"
[[ $(show $svc ActiveState) == active ]] || fail "state after reload: $(show $svc ActiveState)"
ok "write granted at once after reload; policy generation $gen_before -> $gen_after"
in1 sh -c 'echo "rules: [" > /etc/aether-vault/policies.d/60-broken.yaml'
if in1 systemctl reload $svc 2>/dev/null; then fail "reload with a broken policy succeeded"; fi
in1 rm -f /etc/aether-vault/policies.d/60-broken.yaml
as_nobody capability request --resource secret:/systest/db --action write >/dev/null ||
	fail "the old policy was not kept after a failed reload"
[[ $(show $svc ActiveState) == active ]] || fail "a failed reload stopped the service"
# Removing the broken file is a directory change: the watcher reloads by itself (after its
# 200 ms debounce) and the failed load's error is gone. Polled for, since step 5b's doctor
# would otherwise race it.
for _ in $(seq 50); do
	err=$(in1 /usr/bin/aether-vault agent status --format json | jq -r '.policy_last_error // empty')
	[[ -z $err ]] && break
	sleep 0.2
done
[[ -z $err ]] || fail "removing the broken policy file did not clear the load error: $err"
ok "a broken policy makes systemctl reload fail and keeps the old policy in force; removing it clears the error without a reload"

# --- 5. journald --------------------------------------------------------------------------
step "5. journalctl -o json carries the structured fields"
in1 journalctl --no-pager -u $svc -o json >"$work/journal.json"
# Denials are notices (grants are debug-level: the audit log, not the journal, is the record).
jq -e -s 'map(select(.AV_EVENT == "capability_request" and .AV_DECISION == "denied"
		and .AV_UID == "65534" and .AV_RESOURCE == "secret:/other/db" and (.AV_PID | length) > 0
		and (.MESSAGE_ID | length) == 32 and .SYSLOG_IDENTIFIER == "aether-vault-agent"))
	| length >= 1' "$work/journal.json" >/dev/null ||
	fail "no journal entry AV_EVENT=capability_request AV_DECISION=denied AV_UID=65534 with MESSAGE_ID"
jq -e -s 'map(select(.AV_EVENT == "policy_reload" and .AV_POLICY_GENERATION == "2")) | length >= 1' \
	"$work/journal.json" >/dev/null || fail "no AV_EVENT=policy_reload entry"
ok "denial entry: $(jq -c -s 'map(select(.AV_DECISION == "denied")) | .[0] | {MESSAGE_ID, PRIORITY, AV_EVENT, AV_DECISION, AV_UID, AV_PID, AV_RESOURCE, AV_POLICY_GENERATION}' "$work/journal.json")"

# The policy load's details (directory, counts) are in MESSAGE, which journalctl shows.
jq -e -s 'map(select((.MESSAGE // "") | startswith("policy set in force directory=/etc/aether-vault/policies.d generation=1 files=")))
	| length >= 1' "$work/journal.json" >/dev/null ||
	fail "no policy load entry with its directory and counts in MESSAGE"
ok "policy load: $(jq -r -s 'map(select((.MESSAGE // "") | startswith("policy set in force"))) | .[0].MESSAGE' "$work/journal.json")"

# --- 5b. doctor ---------------------------------------------------------------------------
step "5b. aether-vault doctor on the packaged setup"
rc=0
in1 /usr/bin/aether-vault doctor --format json >"$work/doctor.json" 2>"$work/doctor.err" || rc=$?
[[ $rc == 0 ]] || fail "doctor exited $rc: $(cat "$work/doctor.json" "$work/doctor.err")"
jq -e '[.checks[] | select(.check == "unit" and .status == "ok")] | length == 2' "$work/doctor.json" >/dev/null ||
	fail "doctor did not find both units fine: $(cat "$work/doctor.json")"
jq -e '[.checks[] | select(.check == "files" and .status == "ok")] | length == 1' "$work/doctor.json" >/dev/null ||
	fail "doctor did not judge the files by the agent's user: $(cat "$work/doctor.json")"
in1 chmod 664 /etc/aether-vault/policies.d/50-systest.yaml
rc=0
in1 /usr/bin/aether-vault doctor --format json >"$work/doctor2.json" 2>/dev/null || rc=$?
in1 chmod 644 /etc/aether-vault/policies.d/50-systest.yaml
in1 systemctl reload $svc
[[ $rc == 1 ]] || fail "doctor with a group-writable policy file exited $rc"
jq -e '[.checks[] | select(.status == "problem" and .fix == "chmod go-w /etc/aether-vault/policies.d/50-systest.yaml")] | length == 1' \
	"$work/doctor2.json" >/dev/null || fail "doctor did not name the group-writable policy file: $(cat "$work/doctor2.json")"
ok "doctor: exit 0 with both units and every file fine; a group-writable policy file exits 1 with its chmod"

# --- 6. watchdog --------------------------------------------------------------------------
step "6. watchdog: a stopped agent is restarted, capabilities survive"
in1 mkdir -p /run/systemd/system/$svc.d
in1 tee /run/systemd/system/$svc.d/watchdog.conf >/dev/null <<'EOF'
[Service]
WatchdogSec=2s
TimeoutAbortSec=5s
EOF
in1 systemctl daemon-reload
in1 systemctl restart $svc
[[ $(show $svc WatchdogUSec) == 2s ]] || fail "WatchdogUSec=$(show $svc WatchdogUSec)"
sleep 3 # longer than WatchdogSec: a healthy agent keeps petting it
[[ $(show $svc ActiveState) == active && $(show $svc NRestarts) == 0 ]] ||
	fail "a healthy agent was not kept alive by its watchdog pings"
out=$(as_nobody capability request --resource secret:/systest/db --action read --ttl 600 --format json) ||
	fail "grant before SIGSTOP: $out"
cap2=$(jq -r .capability.id <<<"$out")
main=$(show $svc MainPID)
in1 kill -STOP "$main" # MainPID is a pid of the namespace
for _ in $(seq 1 100); do
	new=$(show $svc MainPID)
	[[ $new != "$main" && $new != 0 && $(show $svc ActiveState) == active ]] && break
	sleep 0.2
done
[[ $(show $svc NRestarts) -ge 1 ]] || fail "not restarted after SIGSTOP (NRestarts=$(show $svc NRestarts))"
[[ $new != "$main" ]] || fail "MainPID unchanged"
journal=$(in1 journalctl --no-pager -u $svc)
grep -q -i 'watchdog timeout' <<<"$journal" || fail "journal does not mention the watchdog"
as_nobody capability validate "$cap2" >/dev/null || fail "capability $cap2 invalid after the restart"
as_nobody capability validate "$cap" >/dev/null || fail "capability $cap invalid after the restart"
ok "watchdog timeout → restarted (pid $main -> $new); capabilities $cap2 and $cap still valid"
in1 rm -rf /run/systemd/system/$svc.d
in1 systemctl daemon-reload
in1 systemctl restart $svc

step "6a. idle exit: with idle_exit_seconds the agent exits when unused; the socket restarts it"
in1 mkdir -p /run/systemd/system/$svc.d
printf '[Service]\nEnvironment=VAULT_AGENT_IDLE_EXIT_SECONDS=2\n' | in1 tee /run/systemd/system/$svc.d/idle.conf >/dev/null
in1 systemctl daemon-reload
in1 systemctl restart $svc
for _ in $(seq 1 50); do
	[[ $(show $svc ActiveState) == inactive ]] && break
	sleep 0.2
done
[[ $(show $svc ActiveState) == inactive && $(show $svc Result) == success ]] ||
	fail "no idle exit: ActiveState=$(show $svc ActiveState) Result=$(show $svc Result)"
[[ $(show $sock ActiveState) == active ]] || fail "socket not listening after the idle exit"
as_nobody capability validate "$cap" >/dev/null || fail "$cap invalid after the idle exit"
[[ $(show $svc ActiveState) == active ]] || fail "the next client did not start the agent"
ok "exited idle with status 0; the next client re-activated it; $cap still valid"
in1 rm -rf /run/systemd/system/$svc.d
in1 systemctl daemon-reload
in1 systemctl restart $svc

# --- upgrade ------------------------------------------------------------------------------
step "6b. reinstalling (an upgrade) restarts a running agent; the socket keeps listening"
main=$(show $svc MainPID)
# The administrator's choice stands: a credentials socket disabled before stays disabled.
in1 systemctl disable --now $csock >/dev/null 2>&1
in1 dpkg -i "$staged_deb" >"$work/dpkg2.log" 2>&1 || {
	cat "$work/dpkg2.log" >&2
	fail "dpkg -i over an installed package"
}
new=$(show $svc MainPID)
[[ $new != "$main" && $(show $svc ActiveState) == active ]] || fail "not restarted on upgrade ($main -> $new)"
[[ $(show $sock ActiveState) == active ]] || fail "socket not active after upgrade"
[[ $(show $csock UnitFileState) == disabled ]] || fail "the upgrade re-enabled a disabled credentials socket"
if grep -qF 'denies every request' "$work/dpkg2.log"; then fail "the no-policy note was printed with a policy installed"; fi
as_nobody capability validate "$cap" >/dev/null || fail "capability $cap invalid after the upgrade"
in1 systemctl enable --now $csock >/dev/null 2>&1
in1 systemctl restart $svc
ok "upgrade restarted the agent (pid $main -> $new); $cap still valid; a disabled credentials socket stayed disabled"

step "6c. a state file left by root: the service refuses it, naming it and the fix in the journal"
# What a run as root in /var/lib/aether-vault used to leave behind (StateDirectory= does not
# fix it: systemd re-owns the tree only when the directory itself has the wrong owner).
in1 systemctl stop $svc
in1 chown root:root /var/lib/aether-vault/capabilities.log
in1 systemctl start $svc >/dev/null 2>&1 || true
refused=
for _ in $(seq 1 50); do
	refused=$(in1 journalctl --no-pager -u $svc -o json |
		jq -c 'select(.MESSAGE_ID == "d2f268b47433441c88c4bd2c2317e9f9")' | tail -1)
	[[ -n $refused ]] && break
	sleep 0.2
done
[[ -n $refused ]] || fail "no journal entry with the refused-file MESSAGE_ID"
jq -e '.AV_FILE == "/var/lib/aether-vault/capabilities.log"
	and .AV_FIX == "chown -R aether-vault: /var/lib/aether-vault" and .PRIORITY == "3"' \
	<<<"$refused" >/dev/null || fail "refused-file entry: $refused"
[[ $(show $svc ActiveState) != active ]] || fail "the service runs with a root-owned state file"
in1 systemctl stop $svc $sock
in1 chown aether-vault:aether-vault /var/lib/aether-vault/capabilities.log
in1 systemctl reset-failed $svc $sock
in1 systemctl start $sock
as_nobody capability validate "$cap" >/dev/null || fail "$cap invalid once the owner was fixed"
ok "refused with AV_FILE and AV_FIX in the journal; after the chown it starts and $cap is valid"

# --- credentials ----------------------------------------------------------------------------
step "6d. systemd credentials: LoadCredential= from the agent (tests/system/credentials.sh)"
"$repo/tests/system/credentials.sh" || fail "tests/system/credentials.sh"
ok "systemd credentials"

# --- telemetry -----------------------------------------------------------------------------
step "6e. telemetry.listen: refused by the shipped unit's sandbox, served with the example drop-in"
# A GET over bash's /dev/tcp (the namespace shares this host's network): the status code.
http_status() {
	timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/19090 &&
		printf "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" "$1" >&3 &&
		head -1 <&3 | cut -d" " -f2' _ "$1" 2>/dev/null
}
in1 mkdir -p /run/systemd/system/$svc.d
printf '[Service]\nEnvironment=VAULT_AGENT_TELEMETRY__LISTEN=127.0.0.1:19090\n' |
	in1 tee /run/systemd/system/$svc.d/listen.conf >/dev/null
in1 systemctl daemon-reload
in1 systemctl restart $svc
as_nobody agent health >/dev/null || fail "agent health failed with telemetry.listen set"
journal=$(in1 journalctl --no-pager -u $svc -o cat)
grep -q "cannot serve telemetry over HTTP" <<<"$journal" ||
	fail "no journal line saying the sandbox kept telemetry from binding"
in1 install -D -m 0644 /usr/share/doc/aether-vault-agent/examples/telemetry.conf \
	/run/systemd/system/$svc.d/telemetry.conf
in1 systemctl daemon-reload
in1 systemctl restart $svc
code=
for _ in $(seq 1 50); do
	code=$(http_status /health) && [[ $code == 200 ]] && break
	sleep 0.2
done
[[ $code == 200 ]] || fail "GET /health with the telemetry drop-in: '$code'"
[[ $(http_status /metrics) == 200 ]] || fail "GET /metrics with the telemetry drop-in"
metrics=$(as_nobody agent metrics)
grep -q '^aether_vault_capabilities_active ' <<<"$metrics" || fail "agent metrics as nobody: $metrics"
ok "without the drop-in the agent says it cannot bind; with it /health and /metrics answer 200"
in1 rm -rf /run/systemd/system/$svc.d
in1 systemctl daemon-reload
in1 systemctl restart $svc

# --- 7. hardening -------------------------------------------------------------------------
step "7. systemd-analyze security and verify"
in1 systemd-analyze security --no-pager $svc >"$work/security.txt" 2>&1 || true
score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p' "$work/security.txt")
[[ -n $score ]] || {
	cat "$work/security.txt" >&2
	fail "no score"
}
awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }' || {
	grep '✗' "$work/security.txt" >&2 || true
	fail "exposure $score > 1.5"
}
ok "systemd-analyze security: $score"
in1 systemd-analyze verify /usr/lib/systemd/system/$sock /usr/lib/systemd/system/$csock \
	/usr/lib/systemd/system/$svc >"$work/verify.txt" 2>&1 || {
	cat "$work/verify.txt" >&2
	fail "systemd-analyze verify"
}
if grep -i 'aether' "$work/verify.txt"; then fail "systemd-analyze verify warns about our units"; fi
ok "systemd-analyze verify: clean"

# --- 8. stop and purge --------------------------------------------------------------------
step "8. stop cleanly; purge leaves nothing behind"
in1 systemctl stop $svc
[[ $(show $svc Result) == success && $(show $svc ExecMainStatus) == 0 ]] ||
	fail "stop: Result=$(show $svc Result) ExecMainStatus=$(show $svc ExecMainStatus)"
in1 /usr/bin/aether-vault audit verify /var/log/aether-vault/audit.log >"$work/verify-audit.txt" 2>&1 || {
	cat "$work/verify-audit.txt" >&2
	fail "audit chain"
}
grep -q '^Sealed: ' "$work/verify-audit.txt" || {
	cat "$work/verify-audit.txt" >&2
	fail "audit verify did not hold the log to the agent's seals (/var/lib/aether-vault/audit.seals)"
}
tail -1 /var/log/aether-vault/audit.log | jq -e '.type == "agent_stop"' >/dev/null ||
	fail "the last audit record is not agent_stop: $(tail -1 /var/log/aether-vault/audit.log)"
ok "stopped with status 0; audit chain verifies against its seals and ends with agent_stop"
in1 dpkg -L aether-vault-agent >"$work/files.txt"
in1 rm -f /etc/aether-vault/policies.d/50-systest.yaml
in1 dpkg --purge aether-vault-agent >"$work/purge.log" 2>&1 || {
	cat "$work/purge.log" >&2
	fail "dpkg --purge"
}
left=()
while read -r f; do
	[[ $f == /usr/share/* || $f == /etc/* || $f == /usr/bin/* || $f == /usr/lib/* ]] || continue
	[[ -d $f ]] && continue # shared directories (/usr/bin, /usr/share/man/…)
	[[ -e $f ]] && left+=("$f")
done <"$work/files.txt"
for f in /etc/aether-vault /var/lib/aether-vault /var/log/aether-vault \
	/etc/systemd/system/sockets.target.wants/$sock /run/aether-vault/agent.sock \
	/etc/systemd/system/sockets.target.wants/$csock /run/aether-vault/credentials.sock \
	/var/lib/systemd/deb-systemd-helper-enabled/$sock.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/$csock.dsh-also \
	/var/lib/systemd/deb-systemd-helper-masked/$sock \
	/var/lib/systemd/deb-systemd-helper-masked/$csock; do
	if in1 test -e "$f"; then left+=("$f"); fi
done
((${#left[@]} == 0)) || fail "left behind after purge: ${left[*]}"
[[ $(show $sock LoadState) != loaded || $(show $sock ActiveState) == inactive ]] || fail "socket still active"
[[ $(show $csock LoadState) != loaded || $(show $csock ActiveState) == inactive ]] || fail "credentials socket still active"
ok "purged: no file of ours left (the aether-vault user stays, as Debian does)"
"$pid1" stop

# --- 9. rpm in a scratch root -------------------------------------------------------------
step "9. the .rpm in a scratch root (rpm --root)"
rpm -qp --scripts "$rpm" >"$work/scripts.txt" 2>/dev/null
grep -q 'systemd-sysusers /usr/lib/sysusers.d/aether-vault-agent.conf' "$work/scripts.txt" || fail "no sysusers in %post"
grep -q 'enable aether-vault-agent.socket aether-vault-agent-credentials.socket' "$work/scripts.txt" || fail "no socket enable in %post"
grep -q 'try-restart aether-vault-agent.service' "$work/scripts.txt" || fail "no restart on upgrade"
grep -q 'new-credentials-socket' "$work/scripts.txt" || fail "no %pre note for an upgrade that adds the credentials socket"
grep -q 'disable aether-vault-agent.socket aether-vault-agent-credentials.socket' "$work/scripts.txt" || fail "no disable in %preun"
configfiles=$(rpm -qp --configfiles "$rpm" 2>/dev/null)
grep -qx /etc/aether-vault/agent.yaml <<<"$configfiles" || fail "agent.yaml is not %config"
[[ $(rpm -qp --queryformat '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" 2>/dev/null | grep ' /etc/aether-vault/agent.yaml$' | cut -d' ' -f1) == *n* ]] ||
	fail "agent.yaml is not %config(noreplace)"
ok "scriptlets and %config(noreplace) present"

# The scratch root: the machine's /usr through a writable overlay (so scriptlets have a shell,
# systemd-sysusers and systemctl), a copy of the account files, empty /var and /run. All in a
# private mount namespace: nothing of it outlives the test.
scratch=$work/rpmroot
mkdir -p "$scratch"/{root,upper,wd}
mkdir -p "$scratch/root"/{usr,etc,var/lib,var/log,run,tmp,proc,dev}
for l in bin sbin lib lib64; do [[ -e /$l ]] && ln -s "usr/$l" "$scratch/root/$l"; done
cp -a /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/nsswitch.conf "$scratch/root/etc/"
unshare --mount --propagation private bash -euo pipefail -c '
	scratch=$1 rpm=$2 r=$1/root
	mount -t overlay overlay -o lowerdir=/usr,upperdir="$scratch/upper",workdir="$scratch/wd" "$r/usr"
	mount --bind /dev "$r/dev"
	mount -t proc proc "$r/proc"
	rpm --root "$r" --initdb
	rpm --root "$r" -i --nodeps "$rpm" >"$scratch/install.log" 2>&1 || {
		cat "$scratch/install.log" >&2
		exit 1
	}
	# No policy file yet: %post says that standard mode denies everything.
	grep -qF "standard mode, which denies every request until a policy allows it" "$scratch/install.log"
	rpm --root "$r" -V --nodeps aether-vault-agent
	grep -q "^aether-vault:" "$r/etc/passwd"
	grep -q "^aether-vault-admin:" "$r/etc/group"
	test "$(stat -c "%a" "$r/var/lib/aether-vault")" = 700
	test "$(stat -c "%a" "$r/var/log/aether-vault")" = 750
	test -x "$r/usr/bin/aether-vault-agent"
	test -f "$r/usr/lib/systemd/system/aether-vault-agent.socket"
	test -L "$r/etc/systemd/system/sockets.target.wants/aether-vault-agent.socket"
	test -L "$r/etc/systemd/system/sockets.target.wants/aether-vault-agent-credentials.socket"
	test -f "$r/usr/share/doc/aether-vault-agent/examples/service-credentials.conf"
	# An upgrade from a version without the credentials socket (its unit file and link gone)
	# enables it like the agent socket; an ordinary upgrade keeps it disabled if it was.
	clink=$r/etc/systemd/system/sockets.target.wants/aether-vault-agent-credentials.socket
	rm "$r/usr/lib/systemd/system/aether-vault-agent-credentials.socket" "$clink"
	rpm --root "$r" -U --replacepkgs --nodeps "$rpm"
	test -L "$clink"
	test ! -e "$r/var/lib/rpm-state/aether-vault-agent/new-credentials-socket"
	rm "$clink"
	rpm --root "$r" -U --replacepkgs --nodeps "$rpm"
	test ! -e "$clink"
	rpm --root "$r" -e aether-vault-agent
	test ! -e "$r/usr/bin/aether-vault-agent"
	test ! -e "$r/etc/systemd/system/sockets.target.wants/aether-vault-agent.socket"
	test ! -e "$r/etc/systemd/system/sockets.target.wants/aether-vault-agent-credentials.socket"
	test ! -e "$r/etc/aether-vault/agent.yaml"
	test -d "$r/var/lib/aether-vault"
' rpm-root "$scratch" "$repo/$rpm" || fail "rpm --root install/verify/erase"
ok "rpm --root: %post said the agent denies everything without a policy; files verify, user/group and 0700/0750 directories made by the scriptlets, both sockets enabled (the credentials socket also on an upgrade from a version without it, not over a disable); erase removes files and the enablement, keeps state"

printf '\n%d checks passed\n' "$passed"
