//! Layering, unknown keys and value checks, with the environment isolated by figment's Jail.
// Jail's closures must return figment's own (large) error type.
#![allow(clippy::result_large_err)]

use super::*;
use figment::Jail;

fn paths(dir: &Path) -> PathDefaults {
    PathDefaults::user_only(dir)
}

#[test]
fn mode_defaults_follow_the_upstream_table() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        let c = load(None, &Overrides::default(), &p).unwrap().config;
        assert_eq!(c.mode, Mode::Standard);
        assert_eq!(
            (c.capability_engine.default_ttl, c.capability_engine.max_ttl),
            (300, 3600)
        );
        let o = Overrides {
            mode: Some(Mode::Hardened),
            ..Default::default()
        };
        let c = load(None, &o, &p).unwrap().config;
        assert_eq!(
            (c.capability_engine.default_ttl, c.ipc.max_connections),
            (60, 50)
        );
        assert_eq!(c.log_level, "warn");
        let o = Overrides {
            mode: Some(Mode::Development),
            ..Default::default()
        };
        let c = load(None, &o, &p).unwrap().config;
        assert_eq!(
            (c.capability_engine.max_ttl, c.ipc.max_connections),
            (7200, 200)
        );
        Ok(())
    });
}

#[test]
fn file_then_env_then_flags() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        jail.create_file(
            "agent.yaml",
            "mode: development\nsocket_path: /tmp/from-file.sock\nipc:\n  max_connections: 7\n  socket_mode: 0660\n",
        )?;
        let file = jail.directory().join("agent.yaml");
        let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
        assert_eq!(c.mode, Mode::Development);
        assert_eq!(
            c.capability_engine.default_ttl, 3600,
            "mode from the file picks the defaults"
        );
        assert_eq!(c.ipc.max_connections, 7);
        assert_eq!(c.ipc.socket_mode, SocketMode(0o660));
        jail.set_env("VAULT_AGENT_SOCKET_PATH", "/tmp/from-env.sock");
        jail.set_env("VAULT_AGENT_IPC__MAX_CONNECTIONS", "9");
        jail.set_env("VAULT_AGENT_POLICY_DIR", "/tmp/pol");
        let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
        assert_eq!(c.socket_path, PathBuf::from("/tmp/from-env.sock"));
        assert_eq!(c.ipc.max_connections, 9);
        assert_eq!(c.policy_engine.directory, PathBuf::from("/tmp/pol"));
        let o = Overrides {
            socket_path: Some("/tmp/from-flag.sock".into()),
            policy_dir: Some("/tmp/flagpol".into()),
            ..Default::default()
        };
        let c = load(Some(&file), &o, &p).unwrap().config;
        assert_eq!(c.socket_path, PathBuf::from("/tmp/from-flag.sock"));
        assert_eq!(c.policy_engine.directory, PathBuf::from("/tmp/flagpol"));
        Ok(())
    });
}

#[test]
fn config_file_env_var_and_default_path() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        std::fs::create_dir_all(p.user.config_file.parent().unwrap()).unwrap();
        std::fs::write(&p.user.config_file, "log_level: error\n").unwrap();
        let l = load(None, &Overrides::default(), &p).unwrap();
        assert_eq!(l.config.log_level, "error");
        assert_eq!(l.file.as_deref(), Some(p.user.config_file.as_path()));
        jail.create_file("other.yaml", "log_level: trace\n")?;
        jail.set_env(
            "VAULT_AGENT_CONFIG_FILE",
            jail.directory().join("other.yaml").display(),
        );
        assert_eq!(
            load(None, &Overrides::default(), &p)
                .unwrap()
                .config
                .log_level,
            "trace"
        );
        jail.set_env("VAULT_AGENT_CONFIG_FILE", "/nonexistent/agent.yaml");
        assert!(matches!(
            load(None, &Overrides::default(), &p),
            Err(ConfigError::MissingFile(_))
        ));
        Ok(())
    });
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_and_the_file() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        jail.create_file("a.yaml", "ipc:\n  max_conections: 5\n")?;
        let e = load(
            Some(&jail.directory().join("a.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_conections") && e.contains("a.yaml"), "{e}");
        jail.create_file("b.yaml", "capability_engine:\n  default_ttl: soon\n")?;
        let e = load(
            Some(&jail.directory().join("b.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("default_ttl") && e.contains("b.yaml"), "{e}");
        jail.create_file("c.yaml", "capability_engine:\n  max_ttl: 10\n")?;
        let e = load(
            Some(&jail.directory().join("c.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("capability_engine.max_ttl") && e.contains("c.yaml"),
            "{e}"
        );
        jail.create_file("d.yaml", "mode: turbo\n")?;
        assert!(
            load(
                Some(&jail.directory().join("d.yaml")),
                &Overrides::default(),
                &p
            )
            .is_err()
        );
        jail.create_file("e.yaml", "policy_engine:\n  default_decision: allow\n")?;
        let e = load(
            Some(&jail.directory().join("e.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("default_decision"), "{e}");
        jail.create_file("f.yaml", "mode: [\n")?;
        let e = load(
            Some(&jail.directory().join("f.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("f.yaml:2:1: "), "{e}");
        Ok(())
    });
}

#[test]
fn unknown_env_key_is_an_error() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        jail.set_env("VAULT_AGENT_SOKET_PATH", "/tmp/x");
        let e = load(None, &Overrides::default(), &p)
            .unwrap_err()
            .to_string();
        assert!(e.to_lowercase().contains("soket_path"), "{e}");
        Ok(())
    });
}

/// Upstream's HA deployment (seeds: `VAULT_AGENT_HA=true`, `VAULT_AGENT_PEER_ADDRESSES`) gets
/// the reason there is no HA mode, from the environment or the file, not just "unknown key".
#[test]
fn upstream_ha_settings_are_refused_with_the_reason() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        for (var, value) in [
            ("VAULT_AGENT_HA", "true"),
            (
                "VAULT_AGENT_PEER_ADDRESSES",
                "vault-agent-ha-0.vault-agent-ha-1",
            ),
        ] {
            jail.set_env(var, value);
            let e = load(None, &Overrides::default(), &p)
                .unwrap_err()
                .to_string();
            assert!(e.contains(var), "{e}");
            assert!(e.contains("no high-availability mode"), "{e}");
            assert!(e.contains("one agent on every host"), "{e}");
            jail.clear_env();
        }
        jail.create_file("agent.yaml", "version: \"1\"\nha: true\n")?;
        let file = jail.directory().join("agent.yaml");
        let e = load(Some(&file), &Overrides::default(), &p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("agent.yaml:2:1: ha: unknown key: this agent has no high-availability mode"),
            "{e}"
        );
        // Only at the top level: a nested `ha` is an ordinary unknown key.
        jail.create_file("agent.yaml", "version: \"1\"\naudit:\n  ha: true\n")?;
        let e = load(Some(&file), &Overrides::default(), &p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("audit.ha: unknown key; the keys here are"),
            "{e}"
        );
        Ok(())
    });
}

#[test]
fn upstream_capabilities_alias_and_version_are_accepted() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        jail.create_file(
            "k8s.yaml",
            "version: \"1.0\"\nmode: \"standard\"\ncapabilities:\n  enable: true\n  default_ttl: 300\n  max_ttl: 3600\n",
        )?;
        let c = load(
            Some(&jail.directory().join("k8s.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap()
        .config;
        assert_eq!(c.capability_engine.max_ttl, 3600);
        Ok(())
    });
}

#[test]
fn unquoted_yaml_octal_and_hex_modes_are_read_as_written() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        for (text, expect) in [
            ("0o640", Some(0o640)),
            ("0640", Some(0o640)),
            ("640", Some(0o640)),
            ("0x1a4", None),
            ("\"0600\"", Some(0o600)),
        ] {
            jail.create_file("m.yaml", &format!("ipc:\n  socket_mode: {text}\n"))?;
            let r = load(
                Some(&jail.directory().join("m.yaml")),
                &Overrides::default(),
                &p,
            );
            match expect {
                Some(m) => assert_eq!(r.unwrap().config.ipc.socket_mode, SocketMode(m), "{text}"),
                None => assert!(r.unwrap_err().to_string().contains("socket mode"), "{text}"),
            }
        }
        Ok(())
    });
}

#[test]
fn socket_mode_forms() {
    let m: SocketMode = serde_json::from_value(serde_json::json!("0600")).unwrap();
    assert_eq!(m, SocketMode(0o600));
    let m: SocketMode = serde_json::from_value(serde_json::json!(666)).unwrap();
    assert_eq!(m, SocketMode(0o666));
    assert!(serde_json::from_value::<SocketMode>(serde_json::json!(438)).is_err());
    assert!(serde_json::from_value::<SocketMode>(serde_json::json!("7777")).is_err());
    assert_eq!(
        serde_json::to_value(SocketMode(0o666)).unwrap(),
        serde_json::json!("0666")
    );
}

#[test]
fn idle_exit_seconds_defaults_to_never_and_layers_file_then_env() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        let c = load(None, &Overrides::default(), &p).unwrap().config;
        assert_eq!(c.idle_exit_seconds, 0, "never, unless asked");
        jail.create_file("idle.yaml", "idle_exit_seconds: 30\n")?;
        let file = jail.directory().join("idle.yaml");
        let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
        assert_eq!(c.idle_exit_seconds, 30);
        jail.set_env("VAULT_AGENT_IDLE_EXIT_SECONDS", "45");
        let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
        assert_eq!(c.idle_exit_seconds, 45, "the environment beats the file");
        jail.set_env("VAULT_AGENT_IDLE_EXIT_SECONDS", "-1");
        let e = load(Some(&file), &Overrides::default(), &p)
            .unwrap_err()
            .to_string();
        assert!(e.to_lowercase().contains("idle_exit_seconds"), "{e}");
        Ok(())
    });
}

#[test]
fn group_commit_delay_follows_sync_unless_set_and_is_bounded() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        let us = |c: &AgentConfig| c.audit.group_commit_delay().as_micros();
        for (text, want) in [
            ("mode: standard\n", 200),
            ("mode: development\n", 200),
            ("mode: hardened\n", 0),
            (
                "mode: standard\naudit:\n  enable: true\n  sync: always\n",
                0,
            ),
            (
                "mode: hardened\naudit:\n  enable: true\n  sync: periodic\n",
                200,
            ),
            (
                "mode: hardened\naudit:\n  enable: true\n  group_commit_delay_us: 500\n",
                500,
            ),
            (
                "mode: standard\naudit:\n  enable: true\n  group_commit_delay_us: 0\n",
                0,
            ),
            (
                "audit:\n  enable: true\n  group_commit_delay_us: 10000\n",
                10_000,
            ),
        ] {
            jail.create_file("g.yaml", text)?;
            let file = jail.directory().join("g.yaml");
            let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
            assert_eq!(us(&c), want, "{text}");
        }
        // Unset, it is written into the effective configuration with where it came from.
        let loaded = load(None, &Overrides::default(), &p).unwrap();
        assert_eq!(loaded.config.audit.group_commit_delay_us, Some(200));
        assert_eq!(
            loaded.provenance.sources["audit.group_commit_delay_us"],
            "default for audit.sync: periodic"
        );
        jail.set_env("VAULT_AGENT_AUDIT__GROUP_COMMIT_DELAY_US", "50");
        let c = load(None, &Overrides::default(), &p).unwrap().config;
        assert_eq!(us(&c), 50, "from the environment");
        // Out of bounds: in audit_sync_defaults_per_mode_and_checks_its_interval.
        Ok(())
    });
}

#[test]
fn audit_sync_defaults_per_mode_and_checks_its_interval() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        // By flag: periodic in standard and development mode, always in hardened mode.
        for (mode, sync) in [
            (None, AuditSync::Periodic),
            (Some(Mode::Standard), AuditSync::Periodic),
            (Some(Mode::Development), AuditSync::Periodic),
            (Some(Mode::Hardened), AuditSync::Always),
        ] {
            let o = Overrides {
                mode,
                ..Overrides::default()
            };
            let c = load(None, &o, &p).unwrap().config;
            assert_eq!(
                (c.audit.sync, c.audit.sync_interval_ms),
                (sync, 10),
                "{mode:?}"
            );
        }
        // By the file's mode, with an audit section that does not name `sync`; a file that
        // names it wins over the mode's default.
        for (text, sync) in [
            (
                "mode: hardened\naudit:\n  enable: true\n",
                AuditSync::Always,
            ),
            (
                "mode: standard\naudit:\n  enable: true\n",
                AuditSync::Periodic,
            ),
            ("mode: development\n", AuditSync::Periodic),
            (
                "mode: hardened\naudit:\n  enable: true\n  sync: periodic\n",
                AuditSync::Periodic,
            ),
            (
                "mode: standard\naudit:\n  enable: true\n  sync: always\n",
                AuditSync::Always,
            ),
        ] {
            jail.create_file("m.yaml", text)?;
            let file = jail.directory().join("m.yaml");
            let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
            assert_eq!(c.audit.sync, sync, "{text}");
        }
        jail.create_file(
            "s.yaml",
            "audit:\n  enable: true\n  log_file: /tmp/a.log\n  sync: periodic\n  sync_interval_ms: 25\n",
        )?;
        let file = jail.directory().join("s.yaml");
        let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
        assert_eq!(
            (c.audit.sync, c.audit.sync_interval_ms),
            (AuditSync::Periodic, 25)
        );
        for (text, key) in [
            ("sync: sometimes", "sync"),
            ("sync_interval_ms: 0", "audit.sync_interval_ms"),
            ("sync_interval_ms: 1001", "audit.sync_interval_ms"),
            (
                "group_commit_delay_us: 10001",
                "audit.group_commit_delay_us",
            ),
            ("group_commit_delay_us: -1", "group_commit_delay_us"),
        ] {
            jail.create_file(
                "t.yaml",
                &format!("audit:\n  enable: true\n  log_file: /tmp/a.log\n  {text}\n"),
            )?;
            let e = load(
                Some(&jail.directory().join("t.yaml")),
                &Overrides::default(),
                &p,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        Ok(())
    });
}

#[test]
fn audit_record_limits_refusal_budget_and_retention_have_defaults_and_bounds() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        for mode in [Mode::Development, Mode::Standard, Mode::Hardened] {
            let o = Overrides {
                mode: Some(mode),
                ..Overrides::default()
            };
            let a = load(None, &o, &p).unwrap().config.audit;
            assert_eq!(
                (
                    a.max_record_bytes,
                    a.max_field_bytes,
                    a.refusal_budget,
                    a.summary_interval_seconds,
                    a.min_retention_days
                ),
                (8192, 1024, 50, 10, 7),
                "{mode:?}"
            );
        }
        jail.create_file(
            "s.yaml",
            "audit:\n  enable: true\n  log_file: /tmp/a.log\n  max_record_bytes: 65536\n  max_field_bytes: 4096\n  refusal_budget: 0\n  summary_interval_seconds: 60\n  min_retention_days: 0\n",
        )?;
        let a = load(
            Some(&jail.directory().join("s.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap()
        .config
        .audit;
        assert_eq!(
            (
                a.max_record_bytes,
                a.max_field_bytes,
                a.refusal_budget,
                a.summary_interval_seconds,
                a.min_retention_days
            ),
            (65536, 4096, 0, 60, 0)
        );
        for (text, key) in [
            ("max_record_bytes: 4095", "audit.max_record_bytes"),
            ("max_field_bytes: 31", "audit.max_field_bytes"),
            ("max_field_bytes: 9000", "audit.max_field_bytes"),
            (
                "summary_interval_seconds: 0",
                "audit.summary_interval_seconds",
            ),
            (
                "summary_interval_seconds: 3601",
                "audit.summary_interval_seconds",
            ),
            ("min_retention_days: 36501", "audit.min_retention_days"),
            ("refusal_budget: -1", "refusal_budget"),
        ] {
            jail.create_file(
                "t.yaml",
                &format!("audit:\n  enable: true\n  log_file: /tmp/a.log\n  {text}\n"),
            )?;
            let e = load(
                Some(&jail.directory().join("t.yaml")),
                &Overrides::default(),
                &p,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        Ok(())
    });
}

#[test]
fn audit_seals_default_on_in_the_state_dir_and_stay_out_of_the_log_directory() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        for mode in [Mode::Development, Mode::Standard, Mode::Hardened] {
            let o = Overrides {
                mode: Some(mode),
                ..Default::default()
            };
            let c = load(None, &o, &p).unwrap().config;
            assert_eq!((c.audit.seal, c.audit.seal_interval_seconds), (true, 10));
            assert_eq!(
                c.audit.seal_path(&c.state_dir),
                jail.directory().join(".aether-vault/state/audit.seals"),
                "{mode}: the per-user layout's state directory"
            );
        }
        assert_eq!(
            AgentConfig::defaults(Mode::Standard, &DefaultPaths::system())
                .audit
                .seal_path(&DefaultPaths::system().state_dir),
            PathBuf::from("/var/lib/aether-vault/audit.seals")
        );
        jail.create_file(
            "s.yaml",
            "audit:\n  enable: true\n  log_file: /tmp/a.log\n  seal_interval_seconds: 300\n  seal_file: /srv/seals\n",
        )?;
        let c = load(
            Some(&jail.directory().join("s.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap()
        .config;
        assert_eq!(c.audit.seal_interval_seconds, 300);
        assert_eq!(c.audit.seal_path(&c.state_dir), PathBuf::from("/srv/seals"));
        for (text, key) in [
            ("seal_interval_seconds: 0", "audit.seal_interval_seconds"),
            (
                "seal_interval_seconds: 86401",
                "audit.seal_interval_seconds",
            ),
            ("seal_file: /tmp/seals", "audit.seal_file"),
            ("seal: maybe", "seal"),
        ] {
            jail.create_file(
                "t.yaml",
                &format!("audit:\n  enable: true\n  log_file: /tmp/a.log\n  {text}\n"),
            )?;
            let e = load(
                Some(&jail.directory().join("t.yaml")),
                &Overrides::default(),
                &p,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        // The state directory as the log's directory: the default seal file would be beside it.
        jail.create_file(
            "u.yaml",
            "state_dir: /tmp\naudit:\n  enable: true\n  log_file: /tmp/a.log\n",
        )?;
        let e = load(
            Some(&jail.directory().join("u.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("state_dir") && e.contains("audit log's directory"),
            "{e}"
        );
        jail.create_file(
            "v.yaml",
            "state_dir: /tmp\naudit:\n  enable: true\n  log_file: /tmp/a.log\n  seal: false\n",
        )?;
        assert!(
            load(
                Some(&jail.directory().join("v.yaml")),
                &Overrides::default(),
                &p
            )
            .is_ok()
        );
        Ok(())
    });
}

/// Paths as root would have them, with a "system" set inside the jail standing in for the real
/// one: its configuration file exists and sets a path.
fn root_paths(dir: &Path) -> PathDefaults {
    let mut system = DefaultPaths::user(&dir.join("system"));
    system.config_file = dir.join("etc/agent.yaml");
    PathDefaults {
        user: DefaultPaths::user(&dir.join("home")),
        system: Some(system),
    }
}

#[test]
fn development_mode_uses_per_user_paths_even_as_root() {
    Jail::expect_with(|jail| {
        let p = root_paths(jail.directory());
        let system = p.system.clone().unwrap();
        std::fs::create_dir_all(jail.directory().join("etc")).unwrap();
        jail.create_file(
            "etc/agent.yaml",
            "audit:\n  log_file: /from/system/file.log\n",
        )?;
        let standard = load(None, &Overrides::default(), &p).unwrap();
        assert_eq!(standard.file.as_deref(), Some(system.config_file.as_path()));
        assert_eq!(standard.config.state_dir, system.state_dir);
        assert_eq!(standard.config.socket_path, system.socket_path);
        assert_eq!(
            standard.config.audit.log_file,
            PathBuf::from("/from/system/file.log")
        );
        let dev = Overrides {
            mode: Some(Mode::Development),
            ..Default::default()
        };
        for loaded in [load(None, &dev, &p).unwrap(), {
            jail.set_env("VAULT_AGENT_MODE", "development");
            let l = load(None, &Overrides::default(), &p).unwrap();
            jail.clear_env();
            l
        }] {
            let c = &loaded.config;
            assert_eq!(loaded.file, None, "the system's file is not read");
            assert_eq!(c.socket_path, p.user.socket_path);
            assert_eq!(c.state_dir, p.user.state_dir);
            assert_eq!(c.audit.log_file, p.user.audit_file);
            assert_eq!(c.policy_engine.directory, p.user.policy_dir);
        }
        // A system file that itself says development: its own paths stand, the defaults of
        // what it leaves out are per-user.
        jail.create_file("etc/agent.yaml", "mode: development\n")?;
        let c = load(None, &Overrides::default(), &p).unwrap().config;
        assert_eq!(c.mode, Mode::Development);
        assert_eq!(c.state_dir, p.user.state_dir);
        let hardened = Overrides {
            mode: Some(Mode::Hardened),
            ..Default::default()
        };
        assert_eq!(
            load(None, &hardened, &p).unwrap().config.state_dir,
            system.state_dir
        );
        Ok(())
    });
}

#[test]
fn the_admin_reserve_defaults_to_four_and_stays_below_max_connections() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        for mode in [Mode::Development, Mode::Standard, Mode::Hardened] {
            let o = Overrides {
                mode: Some(mode),
                ..Default::default()
            };
            let c = load(None, &o, &p).unwrap().config;
            assert_eq!(c.ipc.admin_reserved_connections, 4, "{mode}");
        }
        jail.create_file("r.yaml", "ipc:\n  max_connections: 4\n")?;
        let e = load(
            Some(&jail.directory().join("r.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ipc.admin_reserved_connections") && e.contains("not below"),
            "{e}"
        );
        jail.create_file(
            "r.yaml",
            "ipc:\n  max_connections: 4\n  admin_reserved_connections: 3\n",
        )?;
        let c = load(
            Some(&jail.directory().join("r.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap()
        .config;
        assert_eq!(c.ipc.admin_reserved_connections, 3);
        Ok(())
    });
}

#[test]
fn the_credentials_socket_is_the_systems_by_default_and_off_per_user() {
    Jail::expect_with(|jail| {
        let mut p = root_paths(jail.directory());
        let system_socket = DefaultPaths::system().credentials_socket;
        assert_eq!(
            system_socket,
            PathBuf::from("/run/aether-vault/credentials.sock")
        );
        if let Some(s) = p.system.as_mut() {
            s.credentials_socket = system_socket.clone();
        }
        for mode in [Mode::Standard, Mode::Hardened] {
            let o = Overrides {
                mode: Some(mode),
                ..Default::default()
            };
            let c = load(None, &o, &p).unwrap().config.credentials;
            assert_eq!(c.socket_path, system_socket, "{mode}");
            assert_eq!(
                (c.max_connections, c.max_value_bytes, c.deadline_seconds),
                (16, 65536, 30),
                "{mode}"
            );
        }
        let dev = Overrides {
            mode: Some(Mode::Development),
            ..Default::default()
        };
        let c = load(None, &dev, &p).unwrap().config.credentials;
        assert_eq!(c.socket_path, PathBuf::new(), "development mode: off");
        // Another user than root has per-user paths only: off too.
        let user = paths(jail.directory());
        let c = load(None, &Overrides::default(), &user).unwrap().config;
        assert_eq!(c.credentials.socket_path, PathBuf::new());
        // The flag wins over the environment, which wins over the file; empty turns it off.
        jail.create_file(
            "c.yaml",
            "credentials:\n  socket_path: /tmp/from-file.sock\n  max_connections: 3\n  max_value_bytes: 100\n  deadline_seconds: 5\n",
        )?;
        let file = jail.directory().join("c.yaml");
        let c = load(Some(&file), &Overrides::default(), &p)
            .unwrap()
            .config
            .credentials;
        assert_eq!(c.socket_path, PathBuf::from("/tmp/from-file.sock"));
        assert_eq!(
            (c.max_connections, c.max_value_bytes, c.deadline_seconds),
            (3, 100, 5)
        );
        jail.set_env("VAULT_AGENT_CREDENTIALS__SOCKET_PATH", "/tmp/from-env.sock");
        let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
        assert_eq!(
            c.credentials.socket_path,
            PathBuf::from("/tmp/from-env.sock")
        );
        let flag = Overrides {
            credentials_socket: Some(PathBuf::new()),
            ..Default::default()
        };
        let c = load(Some(&file), &flag, &p).unwrap().config;
        assert_eq!(c.credentials.socket_path, PathBuf::new(), "empty: off");
        assert_eq!(c.credentials.max_connections, 3, "the rest stays");
        Ok(())
    });
}

#[test]
fn credentials_limits_are_bounded_and_the_socket_has_a_path_of_its_own() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        for (yaml, key) in [
            (
                "credentials:\n  max_connections: 0\n",
                "credentials.max_connections",
            ),
            (
                "credentials:\n  max_value_bytes: 1048577\n",
                "credentials.max_value_bytes",
            ),
            (
                "credentials:\n  max_value_bytes: 0\n",
                "credentials.max_value_bytes",
            ),
            (
                "credentials:\n  deadline_seconds: 0\n",
                "credentials.deadline_seconds",
            ),
            (
                "socket_path: /tmp/same.sock\ncredentials:\n  socket_path: /tmp/same.sock\n",
                "credentials.socket_path",
            ),
            ("credentials:\n  sokcet_path: /tmp/x\n", "sokcet_path"),
        ] {
            jail.create_file("bad.yaml", yaml)?;
            let e = load(
                Some(&jail.directory().join("bad.yaml")),
                &Overrides::default(),
                &p,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(key) && e.contains("bad.yaml"), "{yaml}: {e}");
        }
        let long = format!("credentials:\n  socket_path: /{}\n", "x".repeat(120));
        jail.create_file("long.yaml", &long)?;
        let e = load(
            Some(&jail.directory().join("long.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("credentials.socket_path"), "{e}");
        Ok(())
    });
}

#[test]
fn the_shipped_agent_yaml_is_valid_and_says_the_credentials_defaults() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        jail.create_file("shipped.yaml", include_str!("../../etc/agent.yaml"))?;
        let c = load(
            Some(&jail.directory().join("shipped.yaml")),
            &Overrides::default(),
            &p,
        )
        .unwrap()
        .config;
        let mut system = DefaultPaths::user(jail.directory());
        system.credentials_socket = DefaultPaths::system().credentials_socket;
        let defaults = AgentConfig::defaults(Mode::Standard, &system);
        assert_eq!(c.credentials, defaults.credentials);
        assert_eq!(c.audit.sync, AuditSync::Periodic);
        // The file leaves audit.sync to the mode: hardened mode syncs every record.
        let hardened = Overrides {
            mode: Some(Mode::Hardened),
            ..Overrides::default()
        };
        let c = load(Some(&jail.directory().join("shipped.yaml")), &hardened, &p)
            .unwrap()
            .config;
        assert_eq!(c.audit.sync, AuditSync::Always);
        Ok(())
    });
}

#[test]
fn region_comes_from_file_environment_or_flag_and_must_be_a_label() {
    Jail::expect_with(|jail| {
        let p = paths(jail.directory());
        jail.create_file("r.yaml", "region: eu-central-1\n")?;
        let file = jail.directory().join("r.yaml");
        let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
        assert_eq!(c.region.as_deref(), Some("eu-central-1"));
        jail.set_env("VAULT_AGENT_REGION", "us-west-2");
        let c = load(Some(&file), &Overrides::default(), &p).unwrap().config;
        assert_eq!(c.region.as_deref(), Some("us-west-2"));
        let flag = Overrides {
            region: Some("dc1.rack4".into()),
            ..Default::default()
        };
        assert_eq!(
            load(Some(&file), &flag, &p)
                .unwrap()
                .config
                .region
                .as_deref(),
            Some("dc1.rack4")
        );
        jail.set_env("VAULT_AGENT_REGION", "us west 2");
        let e = load(None, &Overrides::default(), &p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("region") && e.contains("not a region label"),
            "{e}"
        );
        jail.set_env("VAULT_AGENT_REGION", "x".repeat(65));
        assert!(load(None, &Overrides::default(), &p).is_err());
        Ok(())
    });
}
