# aether-vault-agent %preun ($1: 0 on erase, 1 on upgrade): on erase disable and stop the
# sockets and the service. On upgrade they keep running; %post restarts the service.
if [ "$1" -eq 0 ]; then
	systemctl --no-reload disable aether-vault-agent.socket aether-vault-agent-credentials.socket \
		aether-vault-agent.service >/dev/null 2>&1 || :
	if [ -d /run/systemd/system ]; then
		systemctl stop aether-vault-agent.socket aether-vault-agent-credentials.socket \
			aether-vault-agent.service >/dev/null 2>&1 || :
	fi
fi
