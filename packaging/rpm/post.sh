# aether-vault-agent %post ($1: 1 on install, 2 on upgrade): create the user, group and
# directories; on install enable and start the socket (not the service), on upgrade restart a
# running service. cargo-generate-rpm has no systemd macros; this is what %systemd_post does
# plus the sysusers/tmpfiles steps.
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
	systemctl --no-reload enable aether-vault-agent.socket >/dev/null 2>&1 || :
	if [ -d /run/systemd/system ]; then
		systemctl start aether-vault-agent.socket >/dev/null 2>&1 || :
	fi
elif [ -d /run/systemd/system ]; then
	systemctl try-restart aether-vault-agent.service >/dev/null 2>&1 || :
fi
