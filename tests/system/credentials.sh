#!/usr/bin/env bash
# System test of systemd credentials served by the agent (issue 16; root only). Run by
# tests/system/packages.sh while its .deb is installed in its PID 1 namespace; run alone, it
# boots that namespace (tests/system/pid1.sh), installs the newest target/debian/*.deb (built
# first unless AV_SKIP_BUILD=1), and purges and powers off after.
#
#  a. with the agent stopped, a unit (DynamicUser=yes: not root) with the shipped example
#     drop-in, service-credentials.conf (LoadCredential=db-password:/run/aether-vault/credentials.sock),
#     starts: its connection socket-activates the agent through
#     aether-vault-agent-credentials.socket, and the unit finds in $CREDENTIALS_DIRECTORY the
#     exact value of the mapped field, and (a second credential) the whole secret as JSON;
#  b. `aether-vault credential list` and `credential test --live` agree with the policy;
#  c. a unit with a mapping but no allow rule fails to start (243/CREDENTIALS), its ExecStart
#     never runs, and the agent's journal has the refusal entry (its MESSAGE_ID) naming the
#     unit, the credential id and the reason (the rules);
#  d. a reload (`systemctl reload aether-vault-agent`) that removes the unit's mapping makes its
#     next start fail, with a journal entry again (the reason: no mapping);
#  e. every delivery and refusal is a `credential_delivery` audit record with the unit, the id
#     and the outcome, and the chain verifies.
# The test units live in the namespace's /run/systemd/system; the policy file, the secret and
# the units are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
[[ $(id -u) == 0 ]] || {
	echo "credentials.sh: needs root" >&2
	exit 2
}

export AV_PID1_STATE=${AV_PID1_STATE:-/var/tmp/av-pid1}
pid1=$repo/tests/system/pid1.sh
svc=aether-vault-agent.service
csock=aether-vault-agent-credentials.socket
# The journal's MESSAGE_IDs of a credential delivered and refused (docs/protocol.md).
delivered_id=753cd20bf1f447d3a55823d491529281
refused_id=71a1c7180d1f4704b4798ed6421bbe48
sockpath=/run/aether-vault/credentials.sock
policy=/etc/aether-vault/policies.d/60-credtest.yaml
units=/run/systemd/system
# Outside /tmp and /run: the units write here, and this shell reads it.
work=$(mktemp -d /var/tmp/av-credtest.XXXXXX)
chmod 755 "$work"
value='S3cr3t-pw w/ spaces & "quotes"'
standalone=0
started=$EPOCHREALTIME
passed=0
since=

step() { printf '\n== %s\n' "$*"; }
ok() {
	passed=$((passed + 1))
	printf '   ok: %s\n' "$*"
}
in1() { "$pid1" exec "$@"; }
show() { in1 systemctl show -P "$2" "$1"; }
# The agent's journal since this test began, as JSON lines (the machine's persistent journal
# may hold entries of earlier runs: --since keeps them out).
agent_journal() { in1 journalctl --no-pager -u "$svc" -o json --since "@$since"; }
fail() {
	printf '   FAIL: %s\n' "$*" >&2
	if in1 true 2>/dev/null; then
		echo "--- systemctl status" >&2
		in1 systemctl --no-pager status "$csock" "$svc" credtest.service credtest-denied.service >&2 || true
		echo "--- journal" >&2
		in1 journalctl --no-pager --since "@${since:-0}" -n 80 -u "$svc" -u "$csock" \
			-u credtest.service -u credtest-denied.service >&2 || true
	fi
	exit 1
}

# A delivery or refusal as the agent's journal shows it: its MESSAGE_ID, the unit, the
# credential id, the outcome and the reason.
journal_entry() { # MESSAGE_ID UNIT ID -> the newest matching entry, as one JSON line
	agent_journal | jq -c --arg m "$1" --arg u "$2" --arg id "$3" 'select(.MESSAGE_ID == $m
		and .AV_EVENT == "credential_delivery" and .AV_CREDENTIAL_UNIT == $u
		and .AV_CREDENTIAL_ID == $id and (.AV_REASON // "") != "")' | tail -1
}
await_entry() { # MESSAGE_ID UNIT ID
	local e=
	for _ in $(seq 1 25); do
		e=$(journal_entry "$@")
		[[ -n $e ]] && break
		sleep 0.2
	done
	printf '%s' "$e"
}

cleanup() {
	set +e
	if in1 true 2>/dev/null; then
		in1 systemctl stop credtest.service credtest-denied.service >/dev/null 2>&1
		in1 rm -rf "$units/credtest.service" "$units/credtest-denied.service" \
			"$units/credtest.service.d" "$units/credtest-denied.service.d"
		in1 systemctl daemon-reload
		in1 systemctl reset-failed credtest.service credtest-denied.service >/dev/null 2>&1
		if [[ $standalone == 1 ]]; then
			in1 systemctl stop "$csock" aether-vault-agent.socket "$svc" >/dev/null 2>&1
			if in1 dpkg -s aether-vault-agent >/dev/null 2>&1; then
				in1 dpkg --purge aether-vault-agent >/dev/null 2>&1
			fi
			"$pid1" stop >/dev/null
		else
			if [[ $(show "$svc" ActiveState 2>/dev/null) == active ]]; then
				in1 /usr/bin/aether-vault secret delete credtest/db >/dev/null 2>&1
			fi
			in1 rm -f "$policy"
			[[ $(show "$svc" ActiveState 2>/dev/null) == active ]] && in1 systemctl reload "$svc" >/dev/null 2>&1
		fi
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# --- setup ---------------------------------------------------------------------------------
if ! in1 dpkg -s aether-vault-agent >/dev/null 2>&1; then
	standalone=1
	step "setup: boot systemd as PID 1, install the .deb"
	if [[ ${AV_SKIP_BUILD:-0} != 1 ]]; then cargo deb --profile dist; fi
	deb=$(ls -t target/debian/aether-vault-agent_*.deb | head -1)
	"$pid1" stop >/dev/null
	"$pid1" start
	if [[ -e /usr/sbin/policy-rc.d ]]; then # see packages.sh, step 2
		printf '#!/bin/sh\nexit 0\n' >"$work/policy-rc.d"
		chmod 755 "$work/policy-rc.d"
		in1 mount --bind "$work/policy-rc.d" /usr/sbin/policy-rc.d
	fi
	# The namespace has its own /tmp: install a copy outside the checkout (see packages.sh).
	cp "$deb" "$work/"
	in1 dpkg -i "$work/$(basename "$deb")" >"$work/dpkg.log" 2>&1 || {
		cat "$work/dpkg.log" >&2
		fail "dpkg -i $deb"
	}
	ok "installed $deb"
fi
since=$(date +%s)

step "setup: a policy with credentials mappings, a secret, two test units"
in1 tee "$policy" >/dev/null <<'EOF'
id: credtest
name: System test of systemd credentials
version: "1.0"
credentials:
  - {unit: credtest.service, id: db-password, secret: "secret:/credtest/db#password"}
  - {unit: credtest.service, id: dbjson, secret: "secret:/credtest/db"}
  # Mapped, but no rule allows it: refused.
  - {unit: credtest-denied.service, id: db-password, secret: "secret:/credtest/db#password"}
rules:
  # The test (root) stores and removes the secret; it never reads it through the agent.
  - id: root-manages-credtest
    effect: allow
    resources: ["secret:/credtest/*"]
    actions: ["write", "delete"]
    identities: ["uid:0"]
  - id: credtest-reads-db
    effect: allow
    resources: ["secret:/credtest/db"]
    actions: ["read"]
    identities: ["unit:credtest.service"]
EOF
in1 /usr/bin/aether-vault policy check "$policy" >"$work/check.txt" 2>&1 || {
	cat "$work/check.txt" >&2
	fail "aether-vault policy check $policy"
}
if [[ $(show "$svc" ActiveState) == active ]]; then in1 systemctl reload "$svc"; fi
printf '%s' "$value" >"$work/value"
in1 /usr/bin/aether-vault secret put credtest/db user=app "password=@$work/value" >"$work/put.txt" 2>&1 || {
	cat "$work/put.txt" >&2
	fail "aether-vault secret put credtest/db"
}
rm -f "$work/value"

# Both units get db-password from the example drop-in the packages ship, as it is (the
# checkout's copy: an image may exclude /usr/share/doc from installs; packages.sh checks that
# the .deb ships it).
# Staged in $work: the namespace cannot see a checkout under /tmp.
cp "$repo/packaging/systemd-examples/service-credentials.conf" "$work/"
example=$work/service-credentials.conf
for u in credtest.service credtest-denied.service; do
	in1 install -D -m 0644 "$example" "$units/$u.d/aether-vault.conf"
done
# credtest.service writes what it found, base64 (exact bytes), to a file systemd opens for it.
in1 tee "$units/credtest.service" >/dev/null <<EOF
[Unit]
Description=aether-vault system test: a service that gets its secrets from the agent
[Service]
Type=oneshot
DynamicUser=yes
LoadCredential=dbjson:$sockpath
TimeoutStartSec=30s
StandardOutput=truncate:$work/credtest.out
ExecStart=/bin/sh -c 'cd "\$\$CREDENTIALS_DIRECTORY" && echo "uid=\$\$(id -u) owner=\$\$(stat -c %%u db-password) mode=\$\$(stat -c %%a db-password)" && echo "db-password=\$\$(base64 -w0 db-password)" && echo "dbjson=\$\$(base64 -w0 dbjson)"'
EOF
in1 tee "$units/credtest-denied.service" >/dev/null <<EOF
[Unit]
Description=aether-vault system test: a service the policy gives nothing
[Service]
Type=oneshot
DynamicUser=yes
TimeoutStartSec=30s
StandardOutput=truncate:$work/denied.out
ExecStart=/bin/sh -c 'echo "started; db-password has \$\$(stat -c %%s "\$\$CREDENTIALS_DIRECTORY/db-password") bytes"'
EOF
in1 systemctl daemon-reload
ok "policy $policy, secret credtest/db, units credtest.service and credtest-denied.service with the example drop-in"

# --- a. delivery, through socket activation -----------------------------------------------
step "a. with the agent stopped, a unit's LoadCredential= starts it and gets the secret"
[[ $(show "$csock" ActiveState) == active ]] || fail "$csock is not listening"
in1 systemctl stop "$svc" 2>/dev/null # (it can still be activated by its sockets: that is the point)
[[ $(show "$svc" ActiveState) == inactive ]] || fail "the agent did not stop"
in1 systemctl start credtest.service || fail "credtest.service did not start"
[[ $(show credtest.service Result) == success ]] || fail "credtest.service: Result=$(show credtest.service Result)"
[[ $(show "$svc" ActiveState) == active ]] || fail "the credentials socket did not start the agent"
out=$(<"$work/credtest.out")
uid=$(sed -n 's/^uid=\([0-9]*\) .*/\1/p' <<<"$out")
[[ -n $uid && $uid != 0 ]] || fail "credtest.service ran as uid '${uid}', not a dynamic user: $out"
grep -qx "uid=$uid owner=$uid mode=400" <<<"$out" || fail "the credential file is not the unit's, 0400: $out"
got=$(sed -n 's/^db-password=//p' <<<"$out" | base64 -d)
[[ $got == "$value" ]] || fail "db-password is '$got', not the secret's password field"
# Exact bytes: no newline added.
[[ $(sed -n 's/^db-password=//p' <<<"$out" | base64 -d | wc -c) == "${#value}" ]] || fail "db-password has extra bytes"
json=$(sed -n 's/^dbjson=//p' <<<"$out" | base64 -d)
jq -e --arg v "$value" '.password == $v and .user == "app"' <<<"$json" >/dev/null ||
	fail "dbjson is not the whole secret as a JSON object: $json"
entry=$(await_entry $delivered_id credtest.service db-password)
[[ -n $entry ]] || fail "no agent journal entry MESSAGE_ID=$delivered_id for credtest.service/db-password"
jq -e '.AV_OUTCOME == "success" and .AV_RESOURCE == "secret:/credtest/db"' <<<"$entry" >/dev/null ||
	fail "delivery entry: $entry"
ok "the agent was socket-activated; credtest.service (uid $uid) read db-password (${#value} bytes, exact) and dbjson $(jq -c 'keys' <<<"$json"); journal: $(jq -r .MESSAGE <<<"$entry")"

# --- b. the CLI ----------------------------------------------------------------------------
step "b. aether-vault credential list / test --live"
in1 /usr/bin/aether-vault credential list >"$work/list.txt" 2>&1 || {
	cat "$work/list.txt" >&2
	fail "credential list"
}
grep -q 'credtest-denied.service' "$work/list.txt" && grep -q 'dbjson' "$work/list.txt" ||
	fail "credential list does not show the mappings: $(cat "$work/list.txt")"
in1 /usr/bin/aether-vault credential test --unit credtest.service --id db-password --live >"$work/test-ok.txt" 2>&1 ||
	fail "credential test --live for credtest.service exited $?: $(cat "$work/test-ok.txt")"
rc=0
in1 /usr/bin/aether-vault credential test --unit credtest-denied.service --id db-password --live >"$work/test-no.txt" 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "credential test --live for credtest-denied.service exited $rc, not 2: $(cat "$work/test-no.txt")"
ok "list shows the mappings; test --live: credtest.service delivered (0), credtest-denied.service refused (2)"


# --- c. refusal ----------------------------------------------------------------------------
step "c. a unit the policy does not allow fails to start; the agent's journal says why"
if in1 systemctl start credtest-denied.service 2>/dev/null; then
	fail "credtest-denied.service started ($(cat "$work/denied.out" 2>/dev/null)): on systemd 252 a credential read that ends without a byte is an empty file, not a failure"
fi
[[ $(show credtest-denied.service ActiveState) == failed ]] ||
	fail "credtest-denied.service: ActiveState=$(show credtest-denied.service ActiveState)"
[[ ! -s $work/denied.out ]] || fail "credtest-denied.service ran its ExecStart: $(<"$work/denied.out")"
status=$(show credtest-denied.service ExecMainStatus)
[[ $status == 243 ]] || fail "credtest-denied.service: ExecMainStatus=$status, not 243 (CREDENTIALS)"
in1 journalctl --no-pager -u credtest-denied.service --since "@$since" -o cat |
	grep -q 'Failed to set up credentials' || fail "systemd does not say the credentials failed"
entry=$(await_entry $refused_id credtest-denied.service db-password)
[[ -n $entry ]] || fail "no agent journal entry MESSAGE_ID=$refused_id for credtest-denied.service/db-password"
jq -e '.AV_OUTCOME == "denied" and .AV_RESOURCE == "secret:/credtest/db"
	and (.AV_REASON | contains("rules do not allow"))' <<<"$entry" >/dev/null ||
	fail "the refusal entry does not say the rules refused: $entry"
ok "failed (243/CREDENTIALS: systemd 'Failed to set up credentials'), ExecStart never ran; journal: $(jq -c '{MESSAGE_ID, PRIORITY, AV_CREDENTIAL_UNIT, AV_CREDENTIAL_ID, AV_OUTCOME, AV_REASON}' <<<"$entry")"

# --- d. reload -----------------------------------------------------------------------------
step "d. systemctl reload without the mapping: the next start fails"
in1 sed -i '/{unit: credtest.service, id: db-password,/d' "$policy"
in1 systemctl reload "$svc"
if in1 systemctl start credtest.service 2>/dev/null; then
	fail "credtest.service started after its db-password mapping was removed and the agent reloaded"
fi
[[ $(show credtest.service ExecMainStatus) == 243 ]] ||
	fail "credtest.service: ExecMainStatus=$(show credtest.service ExecMainStatus), not 243 (CREDENTIALS)"
entry=$(await_entry $refused_id credtest.service db-password)
[[ -n $entry ]] || fail "no agent journal entry refusing credtest.service/db-password after the reload"
jq -e '.AV_OUTCOME == "denied" and (.AV_REASON | contains("no policy maps credential db-password"))' <<<"$entry" >/dev/null ||
	fail "the refusal entry does not say the mapping is gone: $entry"
ok "credtest.service failed to start (243); journal: $(jq -r .MESSAGE <<<"$entry")"

# --- e. audit ------------------------------------------------------------------------------
step "e. credential_delivery audit records"
audit=/var/log/aether-vault/audit.log
in1 cat "$audit" | jq -c 'select(.type == "credential_delivery")' >"$work/audit.json"
# (A refusal for want of a mapping names no resource.)
for want in 'credtest.service db-password success secret:/credtest/db' \
	'credtest.service dbjson success secret:/credtest/db' \
	'credtest-denied.service db-password denied secret:/credtest/db' 'credtest.service db-password denied -'; do
	read -r u id outcome resource <<<"$want"
	jq -e -s --arg u "$u" --arg id "$id" --arg o "$outcome" --arg r "$resource" 'map(select(
		.credential.unit == $u and .credential.id == $id and .outcome == $o
		and (.resource // "-") == $r and .identity.uid == 0)) | length >= 1' \
		"$work/audit.json" >/dev/null || fail "no credential_delivery audit record: $want"
done
if grep -qF 'S3cr3t-pw' "$work/audit.json"; then fail "the secret's value is in the audit log"; fi
in1 /usr/bin/aether-vault audit verify "$audit" >"$work/verify.txt" 2>&1 || {
	cat "$work/verify.txt" >&2
	fail "audit verify"
}
ok "$(wc -l <"$work/audit.json") credential_delivery records (deliveries and refusals); the chain verifies"

printf '\ncredentials.sh: %d checks passed in %.1f s\n' "$passed" "$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
