//! The protocol messages about systemd credentials, for administrators: `credential_list` (the
//! mappings in force) and `credential_test` (what a start of a unit would get, the backend
//! asked too, never the value).

use super::SharedRef;
use super::audit_writer::{AppendAll, Wait};
use super::policy_watcher::GetStatus;
use crate::audit::{AuditEvent, CredentialRef, EventType, Outcome};
use crate::credentials::{explain, render};
use crate::identity::PeerIdentity;
use crate::protocol::credentials::{
    CredentialInfo, CredentialListResponse, CredentialTestRequest, CredentialTestResponse,
};
use crate::protocol::{ErrorCode, ErrorPayload};

fn internal(what: &str) -> ErrorPayload {
    tracing::error!("{what} did not answer");
    ErrorPayload::new(ErrorCode::InternalError, "internal error")
}

/// `credential_list`: the mappings of the set in force, by unit and id.
pub async fn list(shared: &SharedRef) -> Result<CredentialListResponse, ErrorPayload> {
    let st = shared
        .policy
        .send(GetStatus)
        .await
        .map_err(|_| internal("policy watcher"))?;
    Ok(CredentialListResponse {
        generation: st.set.generation,
        socket: shared.credentials.as_ref().map(|c| {
            c.socket
                .clone()
                .unwrap_or_else(|| "(inherited from systemd)".to_string())
        }),
        credentials: st
            .set
            .credentials
            .values()
            .map(CredentialInfo::from)
            .collect(),
    })
}

/// `credential_test`: what a start of the unit asking for the id would get with the set in
/// force, and whether the backend has the value (its size, never the value). Audited as a
/// `policy_evaluation`.
pub async fn test(
    shared: &SharedRef,
    caller: &PeerIdentity,
    request_id: &str,
    body: crate::protocol::Payload<'_>,
) -> Result<CredentialTestResponse, ErrorPayload> {
    let req: CredentialTestRequest = body.parse().map_err(|e| {
        ErrorPayload::new(
            ErrorCode::InvalidPayload,
            format!("invalid payload format: {e}"),
        )
    })?;
    crate::protocol::checks::check_credential_test(&req)
        .map_err(|e| ErrorPayload::new(ErrorCode::InvalidPayload, e))?;
    let st = shared
        .policy
        .send(GetStatus)
        .await
        .map_err(|_| internal("policy watcher"))?;
    let mut answer = explain(&st.set, &req.unit, &req.id);
    let mapping = st.set.credential(&req.unit, &req.id).cloned();
    drop(st);
    if let (true, Some(m)) = (answer.decision == "deliver", mapping) {
        let backend = shared.secrets.clone();
        let max = shared.config.credentials.max_value_bytes;
        let checked = actix_rt::task::spawn_blocking(move || {
            backend
                .read(&m.path, None)
                .map_err(|e| format!("{}: {e}", m.resource))
                .and_then(|v| render(&v, &m, max).map(|bytes| bytes.len()))
        })
        .await
        .map_err(|_| internal("secrets backend"))?;
        match checked {
            Ok(n) => {
                answer.backend = Some("ok".into());
                answer.bytes = Some(n);
            }
            Err(e) => {
                answer.decision = "refuse".into();
                answer.reason = format!("refused: {e}");
                answer.backend = Some(e);
            }
        }
    }
    let mut ev = AuditEvent::new(EventType::PolicyEvaluation, Outcome::Success)
        .by(caller)
        .request(request_id)
        .because(format!(
            "credential test for unit {} id {}: {} ({})",
            req.unit, req.id, answer.decision, answer.reason
        ));
    ev.credential = Some(CredentialRef {
        id: req.id.clone(),
        unit: req.unit.clone(),
    });
    ev.resource = answer.mapping.as_ref().map(|m| m.resource.clone());
    ev.rules = answer.rules.clone();
    ev.policy_generation = Some(answer.generation);
    let recorded = shared
        .audit
        .send(AppendAll {
            events: vec![ev],
            wait: Wait::Written,
        })
        .await;
    if !matches!(recorded, Ok(Ok(()))) {
        return Err(ErrorPayload::new(
            ErrorCode::AuditUnavailable,
            "the test could not be recorded in the audit log, so it was refused",
        ));
    }
    Ok(answer)
}
