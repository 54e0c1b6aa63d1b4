//! Getting and keeping the Vault token: read from a file, or got by a login, renewed once two
//! thirds of its lease have passed.

use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use super::answers::AuthAnswer;
use super::diagnose::{quote, server_said};
use super::http::parse;
use super::login::LoginRequest;
use super::{TokenState, VaultAuth, VaultBackend, header_safe, lock, read_secret_file};
use crate::secrets::SecretError;

impl VaultBackend {
    /// The token to use now: read, logged in for, or renewed as needed.
    pub(super) fn token(&self) -> Result<Zeroizing<String>, SecretError> {
        let mut st = lock(&self.token);
        match &self.auth {
            VaultAuth::TokenFile(path) => {
                if st.token.is_none() {
                    st.token = Some(read_secret_file(path, "vault token")?);
                    st.obtained = Instant::now();
                }
            }
            // The methods that log in (login.rs): AppRole, Kubernetes, JWT.
            _ => {
                if st.token.is_none() {
                    self.login(&mut st)?;
                } else if !st.lease.is_zero() {
                    let elapsed = st.obtained.elapsed();
                    // Two thirds of the lease; no multiplication, so no overflow on any lease.
                    let renew_at = st.lease - st.lease / 3;
                    if elapsed >= st.lease || (elapsed > renew_at && !st.renewable) {
                        self.login(&mut st)?;
                    } else if elapsed > renew_at {
                        if let Err(e) = self.renew(&mut st) {
                            warn!(error = %e, "renewing the vault token failed; logging in again");
                            self.login(&mut st)?;
                        }
                    }
                }
            }
        }
        st.token
            .clone()
            .ok_or_else(|| SecretError::Unavailable("no vault token".into()))
    }

    /// After a 403 with `used`: gets a new token, unless another thread already did.
    pub(super) fn reauth(&self, used: &str) -> Result<(), SecretError> {
        let mut st = lock(&self.token);
        if st.token.as_deref().is_some_and(|t| t.as_str() != used) {
            return Ok(());
        }
        match &self.auth {
            VaultAuth::TokenFile(path) => {
                st.token = Some(read_secret_file(path, "vault token")?);
                st.obtained = Instant::now();
                Ok(())
            }
            _ => self.login(&mut st),
        }
    }

    /// Logs in with the configured method (the request: [`LoginRequest`]); on success the new
    /// token and its lease are in `st`.
    pub(super) fn login(&self, st: &mut TokenState) -> Result<(), SecretError> {
        // The token in hand is kept until a new one is got: a failed login must not throw away
        // a token that may still work.
        let Some(req) = LoginRequest::build(&self.auth)? else {
            return Err(SecretError::Unavailable(
                "no login method configured".into(),
            ));
        };
        let method = req.method;
        let url = format!("{}/{}", self.api, req.path());
        let started = Instant::now();
        let (status, text) = self.send("POST", &url, None, Some(&req.body), true)?;
        if !(200..300).contains(&status) {
            let said = quote(&server_said(&text, &req.scrub()));
            let message = format!(
                "{method} login at auth/{} failed ({status}){said}",
                req.mount
            );
            // Vault said no to the credentials (not an outage): nothing stale is served on it.
            return Err(if (400..500).contains(&status) && status != 429 {
                SecretError::Misconfigured(message)
            } else {
                SecretError::Unavailable(message)
            });
        }
        let auth = parse::<AuthAnswer>(&text, &format!("the {method} login"))?
            .auth
            .ok_or_else(|| {
                SecretError::Unavailable(format!("vault's {method} login answer has no auth"))
            })?;
        if !header_safe(&auth.client_token) {
            return Err(SecretError::Unavailable(format!(
                "vault's {method} login answer has no usable token"
            )));
        }
        info!(
            lease_seconds = auth.lease_duration,
            renewable = auth.renewable,
            "logged in to vault with {method}"
        );
        st.token = Some(auth.client_token);
        st.obtained = started;
        st.lease = Duration::from_secs(auth.lease_duration);
        st.renewable = auth.renewable;
        Ok(())
    }

    /// `POST /v1/auth/token/renew-self`; a lease cut short (the token's max TTL) is not renewed
    /// again: the next renewal point logs in instead.
    pub(super) fn renew(&self, st: &mut TokenState) -> Result<(), SecretError> {
        let Some(token) = st.token.clone() else {
            return Err(SecretError::Unavailable("no token to renew".into()));
        };
        let url = format!("{}/auth/token/renew-self", self.api);
        let started = Instant::now();
        let (status, text) = self.send("POST", &url, Some(&token), Some("{}"), true)?;
        if !(200..300).contains(&status) {
            let said = quote(&server_said(&text, &[token.as_str()]));
            return Err(SecretError::Unavailable(format!(
                "token renewal failed ({status}){said}"
            )));
        }
        let auth = parse::<AuthAnswer>(&text, "the token renewal")?
            .auth
            .ok_or_else(|| SecretError::Unavailable("vault's renewal answer has no auth".into()))?;
        let lease = Duration::from_secs(auth.lease_duration);
        if header_safe(&auth.client_token) {
            st.token = Some(auth.client_token);
        }
        debug!(
            lease_seconds = auth.lease_duration,
            "renewed the vault token"
        );
        st.renewable = auth.renewable && lease >= st.lease;
        st.lease = lease;
        st.obtained = started;
        Ok(())
    }
}

impl VaultBackend {
    /// Where a fresh token comes from, for messages.
    pub(super) fn token_source(&self) -> String {
        match &self.auth {
            VaultAuth::TokenFile(path) => format!("the token file {}", path.display()),
            VaultAuth::AppRole { mount, .. } => format!("an AppRole login at auth/{mount}"),
            VaultAuth::Kubernetes { mount, .. } => format!("a Kubernetes login at auth/{mount}"),
            VaultAuth::Jwt { mount, .. } => format!("a JWT login at auth/{mount}"),
        }
    }
}
