# aether-vault-agent %post ($1: 1 on install, 2 on upgrade): create the user, group and
# directories; on install enable and start the sockets (the agent's, and the credentials socket
# that systemd's LoadCredential= reads), not the service; on upgrade restart a running service
# (and enable the credentials socket if the version upgraded from had none, see %pre).
# cargo-generate-rpm has no systemd macros; this is what %systemd_post does plus the
# sysusers/tmpfiles steps.
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
