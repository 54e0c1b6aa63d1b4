# aether-vault-agent %post ($1: 1 on install, 2 on upgrade): create the user, group and
# directories; on install enable and start the sockets (the agent's, and the credentials socket
# that systemd's LoadCredential= reads), not the service; on upgrade restart a running service
# (and enable the credentials socket if the version upgraded from had none, see %pre).
# The %systemd_* macros are not on every build host; this is what %systemd_post does plus the
# sysusers/tmpfiles steps. Without a policy file, it says that the agent denies everything
# until one exists.
# Says so when no policy file is installed yet: the packaged configuration runs the agent in
# standard mode, which denies every request until a policy file allows something.
note_no_policy() {
	for f in /etc/aether-vault/policies.d/*.json /etc/aether-vault/policies.d/*.yaml \
		/etc/aether-vault/policies.d/*.yml; do
		[ -e "$f" ] && return 0
	done
	cat <<'EOF'
aether-vault-agent: no policy file in /etc/aether-vault/policies.d yet. The agent runs in
standard mode, which denies every request until a policy allows it. Start from an example
there (*.example), check it with "aether-vault policy check"; see aether-vault-policy(5).
EOF
}
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers /usr/lib/sysusers.d/aether-vault-agent.conf || :
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create /usr/lib/tmpfiles.d/aether-vault-agent.conf || :
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
	systemctl --no-reload enable aether-vault-agent.socket aether-vault-agent-credentials.socket >/dev/null 2>&1 || :
	if [ -d /run/systemd/system ]; then
		systemctl start aether-vault-agent.socket aether-vault-agent-credentials.socket >/dev/null 2>&1 || :
	fi
else
	note=/var/lib/rpm-state/aether-vault-agent/new-credentials-socket
	if [ -e "$note" ]; then
		rm -f "$note"
		rmdir /var/lib/rpm-state/aether-vault-agent 2>/dev/null || :
		if systemctl --quiet is-enabled aether-vault-agent.socket 2>/dev/null; then
			systemctl --no-reload enable aether-vault-agent-credentials.socket >/dev/null 2>&1 || :
			if [ -d /run/systemd/system ]; then
				systemctl start aether-vault-agent-credentials.socket >/dev/null 2>&1 || :
			fi
		fi
	fi
	if [ -d /run/systemd/system ]; then
		systemctl try-restart aether-vault-agent.service >/dev/null 2>&1 || :
	fi
fi
note_no_policy
