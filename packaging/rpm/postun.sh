# aether-vault-agent %postun ($1: 0 on erase, 1 on upgrade). RPM has no purge: like
# "dpkg --remove", an erase keeps /var/lib/aether-vault (signing key, capability store,
# secrets) and /var/log/aether-vault (the audit log of record); remove them by hand once
# they are no longer needed. A modified /etc/aether-vault/agent.yaml is kept as .rpmsave.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
