//! Paths in the configuration are taken as written, except that one starting with `~` is
//! refused: nothing here is a shell, and the agent's user and the administrator who checks the
//! file have different homes.

use super::AgentConfig;

/// Refuses a path that starts with `~`. Nothing here is a shell: taken literally, `~/state`
/// would be a directory named `~` in the agent's working directory; expanded, it would
/// name different places for the service's user and for the administrator who checks the
/// file with `agent config --validate`. So the full path must be written.
pub(super) fn check_no_tilde(config: &AgentConfig) -> Result<(), (String, String)> {
    let mut paths: Vec<(String, String)> = [
        ("socket_path", Some(&config.socket_path)),
        ("state_dir", Some(&config.state_dir)),
        (
            "policy_engine.directory",
            Some(&config.policy_engine.directory),
        ),
        ("audit.log_file", Some(&config.audit.log_file)),
        ("audit.seal_file", config.audit.seal_file.as_ref()),
        (
            "credentials.socket_path",
            Some(&config.credentials.socket_path),
        ),
    ]
    .into_iter()
    .filter_map(|(k, p)| Some((k.to_string(), p?.to_string_lossy().into_owned())))
    .collect();
    if let Some(vault) = &config.secrets.vault {
        collect_vault_paths("secrets.vault", vault, &mut paths);
    }
    for (key, path) in paths {
        if path.starts_with('~') {
            let full = match path.strip_prefix("~/") {
                Some(rest) => format!(", such as {}", super::home_dir().join(rest).display()),
                None => String::new(),
            };
            return Err((
                key,
                format!(
                    "{path:?} starts with ~, which is not expanded (the agent's user and whoever checks the file have different homes): write the full path{full}"
                ),
            ));
        }
    }
    Ok(())
}

/// The file paths of the `secrets.vault` section (`ca_cert`, `*_file`, `auth.token_file`), by key.
fn collect_vault_paths(key: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let here = format!("{key}.{k}");
            match v {
                serde_json::Value::String(s) if k == "ca_cert" || k.ends_with("_file") => {
                    out.push((here, s.clone()));
                }
                other => collect_vault_paths(&here, other, out),
            }
        }
    }
}
