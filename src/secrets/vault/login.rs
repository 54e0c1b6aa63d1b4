//! The login request of each auth method that logs in: AppRole (`role_id` and a secret id),
//! Kubernetes (a role and the pod's service-account token) and JWT (a role and a JWT). Each one
//! is `POST /v1/auth/{mount}/login` with a JSON body; what differs is the body, the credential
//! file read for it and what Vault's answer must be scrubbed of before it is quoted.
//!
//! The credential file is read at each login, so a rotated token or secret id is picked up at
//! the next one. A JWT is checked for its shape (three base64url parts) before it is sent, and
//! neither it nor any of its parts ever appears in an error or a log line.

use std::path::Path;

use serde::Serialize;
use zeroize::Zeroizing;

use super::{VaultAuth, encode_path, read_secret_file};
use crate::secrets::SecretError;

/// A JWT part shorter than this is not scrubbed on its own (it could match ordinary words).
const MIN_SCRUBBED_PART: usize = 16;

/// One login, ready to send.
pub(super) struct LoginRequest {
    /// The method, for messages: `AppRole`, `Kubernetes` or `JWT`.
    pub method: &'static str,
    /// The auth mount, without surrounding `/`, percent-encoded.
    pub mount: String,
    /// The JSON body; it holds the credential.
    pub body: Zeroizing<String>,
    /// What must not appear in a quoted answer: the credential, then (for a JWT) its parts.
    scrub: Vec<Zeroizing<String>>,
}

impl LoginRequest {
    /// The login `auth` calls for, its credential file read now; `None` for a token file, which
    /// does not log in.
    pub(super) fn build(auth: &VaultAuth) -> Result<Option<LoginRequest>, SecretError> {
        #[derive(Serialize)]
        struct AppRole<'a> {
            role_id: &'a str,
            secret_id: &'a str,
        }
        #[derive(Serialize)]
        struct Jwt<'a> {
            role: &'a str,
            jwt: &'a str,
        }
        let (method, mount, body, scrub) = match auth {
            VaultAuth::TokenFile(_) => return Ok(None),
            VaultAuth::AppRole {
                role_id,
                secret_id_file,
                mount,
            } => {
                let secret_id = read_secret_file(secret_id_file, "AppRole secret id")?;
                let body = encode(
                    "AppRole",
                    &AppRole {
                        role_id,
                        secret_id: &secret_id,
                    },
                )?;
                let scrub = vec![secret_id, Zeroizing::new(role_id.clone())];
                ("AppRole", mount, body, scrub)
            }
            VaultAuth::Kubernetes {
                role,
                token_file,
                mount,
            } => {
                let jwt = read_jwt(token_file, "Kubernetes service-account token")?;
                let body = encode("Kubernetes", &Jwt { role, jwt: &jwt })?;
                ("Kubernetes", mount, body, jwt_scrub(jwt))
            }
            VaultAuth::Jwt {
                role,
                token_file,
                mount,
            } => {
                let jwt = read_jwt(token_file, "JWT")?;
                let body = encode("JWT", &Jwt { role, jwt: &jwt })?;
                ("JWT", mount, body, jwt_scrub(jwt))
            }
        };
        Ok(Some(LoginRequest {
            method,
            mount: encode_path(mount.trim_matches('/')),
            body,
            scrub,
        }))
    }

    /// The path under `/v1`: `auth/{mount}/login`.
    pub(super) fn path(&self) -> String {
        format!("auth/{}/login", self.mount)
    }

    /// What [`super::diagnose::server_said`] must replace: the whole credential before its parts.
    pub(super) fn scrub(&self) -> Vec<&str> {
        self.scrub.iter().map(|s| s.as_str()).collect()
    }
}

fn encode(method: &str, body: &impl Serialize) -> Result<Zeroizing<String>, SecretError> {
    serde_json::to_string(body)
        .map(Zeroizing::new)
        .map_err(|_| SecretError::Invalid(format!("cannot encode the {method} login")))
}

/// Reads a JWT file ([`read_secret_file`]'s checks) and checks it is a signed JWT in compact
/// form: three non-empty base64url parts separated by dots. The message names the file, never
/// its content.
fn read_jwt(path: &Path, what: &str) -> Result<Zeroizing<String>, SecretError> {
    let jwt = read_secret_file(path, what)?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let base64url = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if parts.len() != 3 || !parts.iter().all(base64url) {
        return Err(SecretError::Unavailable(format!(
            "the {what} file {} does not hold a signed JWT (three base64url parts separated by dots)",
            path.display()
        )));
    }
    Ok(jwt)
}

/// The JWT, then each of its parts long enough to be told apart from ordinary text: Vault may
/// quote a part (a claim set, a signature) in its error.
fn jwt_scrub(jwt: Zeroizing<String>) -> Vec<Zeroizing<String>> {
    let parts: Vec<Zeroizing<String>> = jwt
        .split('.')
        .filter(|p| p.len() >= MIN_SCRUBBED_PART)
        .map(|p| Zeroizing::new(p.to_string()))
        .collect();
    let mut scrub = vec![jwt];
    scrub.extend(parts);
    scrub
}

#[cfg(test)]
mod tests {
    //! The Kubernetes and JWT methods' configuration (keys, defaults, environment, checks) and
    //! the login each method builds. Logging in against a real server: tests/vault_bao_login.rs.

    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use serde_json::{Value, json};

    use super::super::VaultConfig;
    use super::super::diagnose::{quote, server_said};
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJob3N0LTEiLCJhdWQiOiJhZXRoZXIifQ.c2lnbmF0dXJlLW9mLXRoZS1qd3QtaGVyZQ";

    fn file(dir: &tempfile::TempDir, name: &str, content: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn config(auth: Value) -> Result<VaultConfig, serde_json::Error> {
        serde_json::from_value(json!({ "auth": auth }))
    }

    fn body(req: &LoginRequest) -> Value {
        serde_json::from_str(&req.body).unwrap()
    }

    #[test]
    fn kubernetes_and_jwt_keys_and_their_defaults() {
        let c = config(json!({ "kubernetes": { "role": "app" } })).expect("kubernetes");
        assert_eq!(
            c.auth,
            VaultAuth::Kubernetes {
                role: "app".into(),
                token_file: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
                mount: "kubernetes".into(),
            }
        );
        c.validate().expect("valid");
        // The role may come from VAULT_KUBERNETES_ROLE alone, as the upstream documents do it.
        let c = config(json!({ "kubernetes": {} })).expect("no role in the file");
        assert!(matches!(&c.auth, VaultAuth::Kubernetes { role, .. } if role.is_empty()));

        let c =
            config(json!({ "jwt": { "role": "ci", "token_file": "/run/ci/jwt" } })).expect("jwt");
        assert_eq!(
            c.auth,
            VaultAuth::Jwt {
                role: "ci".into(),
                token_file: "/run/ci/jwt".into(),
                mount: "jwt".into(),
            }
        );
        c.validate().expect("valid");

        let full = json!({ "kubernetes": {
            "role": "app", "token_file": "/t", "mount": "k8s/cluster-a"
        } });
        let c = config(full).expect("full");
        c.validate().expect("nested mount");
        let back: VaultConfig = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);

        for bad in [
            json!({ "jwt": { "token_file": "/t" } }),
            json!({ "jwt": { "role": "r" } }),
            json!({ "jwt": { "role": "r", "token_file": "/t", "jwt": "x" } }),
            json!({ "kubernetes": { "role": "r", "service_account": "x" } }),
            json!({ "kubernetes": "r" }),
        ] {
            assert!(config(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_what_is_missing() {
        let check = |auth: Value| config(auth).unwrap().validate().unwrap_err().to_string();
        let e = check(json!({ "kubernetes": {} }));
        assert!(
            e.contains("Kubernetes role is empty") && e.contains("VAULT_KUBERNETES_ROLE"),
            "{e}"
        );
        let e = check(json!({ "jwt": { "role": " ", "token_file": "/t" } }));
        assert!(e.contains("JWT role is empty"), "{e}");
        let e = check(json!({ "jwt": { "role": "r", "token_file": "" } }));
        assert!(e.contains("JWT token_file is empty"), "{e}");
        for mount in ["/", "a//b", "../x"] {
            let e = check(json!({ "kubernetes": { "role": "r", "mount": mount } }));
            assert!(e.contains("Kubernetes mount"), "{mount}: {e}");
            let e = check(json!({ "jwt": { "role": "r", "token_file": "/t", "mount": mount } }));
            assert!(e.contains("JWT mount"), "{mount}: {e}");
        }
        let e = check(json!({ "approle": { "role_id": "", "secret_id_file": "/s" } }));
        assert!(e.contains("AppRole role_id is empty"), "{e}");
    }

    #[test]
    fn vault_kubernetes_role_overrides_the_role_of_kubernetes_auth_only() {
        let env: HashMap<&str, &str> = [("VAULT_KUBERNETES_ROLE", " from-env ")].into();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let mut c = config(json!({ "kubernetes": {} })).unwrap();
        c.apply_env(lookup).unwrap();
        assert!(matches!(&c.auth, VaultAuth::Kubernetes { role, .. } if role == "from-env"));
        c.validate()
            .expect("the role from the environment is enough");
        let mut c = config(json!({ "kubernetes": { "role": "from-file" } })).unwrap();
        c.apply_env(lookup).unwrap();
        assert!(matches!(&c.auth, VaultAuth::Kubernetes { role, .. } if role == "from-env"));

        for auth in [
            json!({ "jwt": { "role": "ci", "token_file": "/t" } }),
            json!({ "token_file": "/t" }),
            json!({ "approle": { "role_id": "r", "secret_id_file": "/s" } }),
        ] {
            let mut c = config(auth).unwrap();
            let before = c.clone();
            c.apply_env(lookup).unwrap();
            assert_eq!(
                c, before,
                "VAULT_KUBERNETES_ROLE does not switch the method"
            );
        }
        let mut c = config(json!({ "kubernetes": { "role": "r" } })).unwrap();
        let before = c.clone();
        c.apply_env(|k| (k == "VAULT_ROLE_ID").then(|| "x".to_string()))
            .unwrap();
        assert_eq!(c, before, "VAULT_ROLE_ID is AppRole's");
    }

    #[test]
    fn kubernetes_and_jwt_logins_send_the_role_and_the_file_read_now() {
        let dir = tempfile::tempdir().unwrap();
        let token = file(&dir, "token", &format!("{JWT}\n"));
        let auth = VaultAuth::Kubernetes {
            role: "app".into(),
            token_file: token.clone(),
            mount: "/k8s/cluster-a/".into(),
        };
        let req = LoginRequest::build(&auth).unwrap().expect("a login");
        assert_eq!(req.method, "Kubernetes");
        assert_eq!(req.path(), "auth/k8s/cluster-a/login");
        assert_eq!(body(&req), json!({ "role": "app", "jwt": JWT }));

        // The file is read at each login: a rotated token is sent at the next one.
        let rotated = JWT.replace("c2ln", "b3Ro");
        file(&dir, "token", &rotated);
        let req = LoginRequest::build(&auth).unwrap().unwrap();
        assert_eq!(body(&req)["jwt"], rotated);

        let auth = VaultAuth::Jwt {
            role: "ci".into(),
            token_file: token,
            mount: "jwt".into(),
        };
        let req = LoginRequest::build(&auth).unwrap().unwrap();
        assert_eq!((req.method, req.path().as_str()), ("JWT", "auth/jwt/login"));
        assert_eq!(body(&req), json!({ "role": "ci", "jwt": rotated }));

        let secret_id = file(&dir, "secret-id", "s3cr3t-id\n");
        let auth = VaultAuth::AppRole {
            role_id: "role-1".into(),
            secret_id_file: secret_id,
            mount: "approle".into(),
        };
        let req = LoginRequest::build(&auth).unwrap().unwrap();
        assert_eq!(req.path(), "auth/approle/login");
        assert_eq!(
            body(&req),
            json!({ "role_id": "role-1", "secret_id": "s3cr3t-id" })
        );
        assert_eq!(req.scrub(), ["s3cr3t-id", "role-1"]);

        assert!(
            LoginRequest::build(&VaultAuth::TokenFile("/t".into()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_jwt_file_that_is_not_a_jwt_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        for content in [
            "not-a-jwt-but-a-long-secret",
            "a.b",
            "a.b.c.d.e",
            "a..c",
            "eyJh.eyJz.c2ln+/=",
            "eyJh.eyJz.c2ln extra",
            "",
            "\n\n",
        ] {
            let path = file(&dir, "jwt", content);
            let auth = VaultAuth::Jwt {
                role: "ci".into(),
                token_file: path.clone(),
                mount: "jwt".into(),
            };
            let e = match LoginRequest::build(&auth) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{content:?} was accepted"),
            };
            assert!(e.contains(&path.display().to_string()), "{e}");
            for word in content.split(['.', ' ']).filter(|w| w.len() > 3) {
                assert!(!e.contains(word), "{content:?} quoted: {e}");
            }
        }
        let auth = VaultAuth::Kubernetes {
            role: "app".into(),
            token_file: dir.path().join("missing"),
            mount: "kubernetes".into(),
        };
        let e = LoginRequest::build(&auth).err().expect("missing file");
        assert!(
            e.to_string()
                .contains("cannot read the Kubernetes service-account token file"),
            "{e}"
        );
    }

    #[test]
    fn vault_s_answer_is_scrubbed_of_the_jwt_and_its_parts() {
        let dir = tempfile::tempdir().unwrap();
        let auth = VaultAuth::Jwt {
            role: "ci".into(),
            token_file: file(&dir, "jwt", JWT),
            mount: "jwt".into(),
        };
        let req = LoginRequest::build(&auth).unwrap().unwrap();
        let (header, rest) = JWT.split_once('.').unwrap();
        let (claims, signature) = rest.split_once('.').unwrap();
        let answer = json!({ "errors": [
            format!("bad token {JWT}"),
            format!("claims {claims} rejected"),
            format!("signature {signature} unknown; header {header}"),
            "role \"ci\" could not be found",
        ] })
        .to_string();
        let said = quote(&server_said(&answer, &req.scrub()));
        for part in [JWT, header, claims, signature] {
            assert!(!said.contains(part), "{said}");
        }
        assert!(said.contains("bad token ***"), "{said}");
        assert!(said.contains("role \"ci\" could not be found"), "{said}");
    }
}
