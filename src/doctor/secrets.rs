//! The secrets backend, reached as the agent would reach it: the file store opens with its key
//! (read only: nothing is created), or Vault answers at its address with a token it accepts
//! (one LIST of the mount's top, within [`VAULT_TIMEOUT`]), the errors worded as the agent
//! words them ([`crate::secrets::vault`]).

use std::path::Path;
use std::time::Duration;

use super::Finding;
use crate::config::AgentConfig;
use crate::secrets::file::{FileBackend, KEY_FILE, SECRETS_DIR, parse_key};
use crate::secrets::vault::{VaultBackend, VaultConfig};
use crate::secrets::{SecretBackend, SecretError};
use crate::trust::{Owner, Secrecy};

const CHECK: &str = "secrets";

/// The longest doctor waits for Vault (less when `secrets.vault.timeout` is shorter).
pub const VAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// The finding for the configured backend.
pub fn backend(config: &AgentConfig, agent_uid: u32) -> Finding {
    match config.secrets.backend.as_str() {
        "file" => file_store(&config.state_dir, &config.secrets.credential, agent_uid),
        "vault" => vault(config.secrets.vault.clone()),
        other => Finding::problem(
            CHECK,
            format!("secrets.backend {other:?} is not file or vault"),
            "set secrets.backend to file or vault",
        ),
    }
}

/// The file backend: its key (as the agent opens it) and the store it unlocks.
fn file_store(state: &Path, credential: &str, agent_uid: u32) -> Finding {
    if state.exists() && !super::can_enter(state) {
        return super::not_readable(CHECK, state);
    }
    let key_path = state.join(KEY_FILE);
    let store = state.join(SECRETS_DIR);
    let has_store = std::fs::symlink_metadata(store.join(".keycheck")).is_ok();
    if !key_path.exists() {
        return if has_store {
            Finding::warning(
                CHECK,
                format!(
                    "file store {}: no key file {}: the agent must get its key from the systemd credential {credential:?}",
                    store.display(),
                    key_path.display()
                ),
                format!(
                    "check that the service has LoadCredential={credential}:… (or LoadCredentialEncrypted=), or restore {}",
                    key_path.display()
                ),
            )
        } else {
            Finding::ok(
                CHECK,
                format!(
                    "file store {}: not created yet (the agent creates it and its key at its first start)",
                    store.display()
                ),
            )
        };
    }
    if !super::can_read(&key_path) {
        return super::not_readable(CHECK, &key_path);
    }
    if !std::fs::symlink_metadata(&key_path).is_ok_and(|m| m.is_file()) {
        return Finding::problem(
            CHECK,
            format!("secrets key {}: not a regular file", key_path.display()),
            format!("restore {} from a backup", key_path.display()),
        );
    }
    let opened = crate::trust::open(
        &key_path,
        "secrets key",
        std::fs::OpenOptions::new().read(true),
        Owner::agent(agent_uid),
        Secrecy::Private,
    );
    let key = match opened {
        Err(e) => return Finding::file(CHECK, &e),
        Ok(f) => {
            let mut bytes = zeroize::Zeroizing::new(Vec::new());
            if let Err(e) =
                std::io::Read::read_to_end(&mut std::io::Read::take(f, 1024), &mut bytes)
            {
                return Finding::problem(
                    CHECK,
                    format!("cannot read {}: {e}", key_path.display()),
                    super::RUN_AS_ROOT,
                );
            }
            match parse_key(&bytes) {
                Ok(k) => k,
                Err(why) => {
                    return Finding::problem(
                        CHECK,
                        format!("secrets key {}: {why}", key_path.display()),
                        format!("restore {} from a backup", key_path.display()),
                    );
                }
            }
        }
    };
    if !has_store {
        return Finding::ok(
            CHECK,
            format!(
                "file store {}: key readable; no secret stored yet",
                store.display()
            ),
        );
    }
    // Read only: never the agent's own open, which writes a check file it cannot read (and
    // doctor, as root, must write nothing in a directory the agent's user controls).
    match FileBackend::verify_key(state, &key) {
        Ok(n) => Finding::ok(
            CHECK,
            format!(
                "file store {}: its key unlocks it ({n} secret files)",
                store.display()
            ),
        ),
        Err(e) => Finding::problem(
            CHECK,
            format!("file store {}: {e}", store.display()),
            format!(
                "restore the key that goes with {} into {} (a store from another host needs its own key)",
                store.display(),
                key_path.display()
            ),
        ),
    }
}

/// The vault backend: the configuration as the agent reads it, then one LIST.
fn vault(section: Option<serde_json::Value>) -> Finding {
    let Some(section) = section else {
        return Finding::problem(
            CHECK,
            "secrets.backend is vault, but there is no secrets.vault section",
            "add secrets.vault (address, auth) to the configuration: see aether-vault-agent.yaml(5)",
        );
    };
    let mut vc: VaultConfig = match serde_json::from_value(section) {
        Ok(v) => v,
        Err(e) => {
            return Finding::problem(
                CHECK,
                format!("secrets.vault: {e}"),
                "correct secrets.vault in the configuration: see aether-vault-agent.yaml(5)",
            );
        }
    };
    if let Err(e) = vc.apply_process_env().and_then(|()| vc.validate()) {
        return Finding::problem(
            CHECK,
            e.to_string(),
            "correct secrets.vault in the configuration (or the VAULT_* environment)",
        );
    }
    vc.timeout = vc.timeout.min(VAULT_TIMEOUT);
    let address = vc.address.clone();
    let backend = match VaultBackend::new(vc) {
        Ok(b) => b,
        Err(e) => {
            return Finding::problem(
                CHECK,
                e.to_string(),
                "correct secrets.vault (ca_cert, auth files) in the configuration",
            );
        }
    };
    match backend.list("") {
        Ok(_) | Err(SecretError::NotFound(_)) => Finding::ok(
            CHECK,
            format!("vault at {address}: reached, the token is accepted"),
        ),
        Err(SecretError::Denied(e)) => Finding::ok(
            CHECK,
            format!(
                "vault at {address}: reached, the token is accepted (its policy does not allow listing the mount's top: {e})"
            ),
        ),
        Err(e @ SecretError::Unavailable(_)) => Finding::problem(
            CHECK,
            format!("vault at {address}: {e}"),
            format!(
                "check that Vault runs and is unsealed (VAULT_ADDR={address} vault status), secrets.vault.address, and the token or login (secrets.vault.auth)"
            ),
        ),
        Err(e) => Finding::problem(
            CHECK,
            format!("vault at {address}: {e}"),
            "correct secrets.vault (mount, namespace, kv_version, address scheme) in the configuration",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn a_closed_port_is_a_problem_naming_the_address() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = tempfile::tempdir().unwrap();
        let token = base.path().join("token");
        std::fs::write(&token, "t").unwrap();
        let f = vault(Some(serde_json::json!({
            "address": format!("http://127.0.0.1:{port}"),
            "auth": {"token_file": token},
        })));
        assert_eq!(f.status, Status::Problem, "{f:?}");
        assert!(f.message.contains(&format!("127.0.0.1:{port}")), "{f:?}");
        assert!(f.fix.as_deref().unwrap().contains("vault status"), "{f:?}");
    }

    #[test]
    fn a_file_store_not_made_yet_is_fine_and_nothing_is_created() {
        let base = tempfile::tempdir().unwrap();
        let state = base.path().join("state");
        let f = file_store(&state, "secrets-key", nix::unistd::geteuid().as_raw());
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(!state.exists());
    }
}
