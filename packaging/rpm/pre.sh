# aether-vault-agent %pre ($1: 1 on install, 2 on upgrade). An upgrade from a version that had
# no credentials socket leaves a note, so that %post enables the new socket like the agent's
# own (an upgrade otherwise never enables a unit: the administrator's choice stands).
if [ "$1" -ge 2 ] && [ ! -e /usr/lib/systemd/system/aether-vault-agent-credentials.socket ]; then
	mkdir -p /var/lib/rpm-state/aether-vault-agent &&
		touch /var/lib/rpm-state/aether-vault-agent/new-credentials-socket || :
fi
