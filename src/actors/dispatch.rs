//! What a session does with one request: parse the envelope, check permission, ask the other
//! actors, wait for the audit record, and produce the response line.
//!
//! Every path ends in a response; an actor that cannot be reached yields `INTERNAL_ERROR` and
//! nothing granted. Malformed JSON closes the connection; an unknown type or a bad payload does
//! not.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::SharedRef;
use super::audit_writer::{AppendAll, Wait};
use super::policy_watcher::{GetStatus, Trigger};
use super::registry::{
    CapabilityRegistry, Decided, Discard, Grant, List, Redeem, Revoke, Validate,
};
use super::reports::{config_notice, policy_list, running_config, status};
use crate::audit::{AuditEvent, EventType, Outcome};
use crate::capability::GrantLimits;
use crate::identity::PeerIdentity;
use crate::policy::tester::{explain, resolve};
use crate::protocol::checks;
use crate::protocol::types::{
    CapabilityRequest, CapabilityResponse, ListRequest, MetricsResponse, PingResponse,
    PolicyTestRequest, ReloadResponse, RevokeRequest, SecretRequest, SecretResponse, StopResponse,
    ValidateRequest,
};
use crate::protocol::{
    Checked, Envelope, ErrorCode, ErrorPayload, Payload, RawRequest, RequestType, ResponseType,
    TextRequest,
};
use crate::secrets::SecretError;
use crate::transport::framing::FrameError;

/// Whether the connection stays open after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Read the next request.
    KeepOpen,
    /// Close after writing.
    Close,
}

/// A response line and what happens after it.
#[derive(Debug)]
pub struct Reply {
    /// Compact JSON plus `\n`; empty when there is nothing to write.
    pub line: Vec<u8>,
    /// Whether the connection stays open.
    pub after: After,
    /// The error a response of the message's own type carries (a grant refused with
    /// `AUDIT_UNAVAILABLE` or `STORE_UNAVAILABLE` in its `capability_response`, as upstream
    /// answers it): counted in `requests_total` as an `error_response` with it would be.
    pub failed: Option<ErrorCode>,
}

/// Who is asking, fixed for the connection.
pub struct Caller {
    /// Shared state.
    pub shared: SharedRef,
    /// The verified peer.
    pub identity: Arc<PeerIdentity>,
    /// Whether the peer may use admin messages.
    pub is_admin: bool,
}

fn ok<P: serde::Serialize>(kind: RequestType, id: &str, payload: P) -> Reply {
    Reply {
        line: Envelope::new(kind.response_type().as_str(), id, payload).to_line(),
        after: After::KeepOpen,
        failed: None,
    }
}

/// An `error_response`.
pub fn error(id: &str, payload: ErrorPayload, after: After) -> Reply {
    Reply {
        line: Envelope::new(ResponseType::ErrorResponse.as_str(), id, payload).to_line(),
        after,
        failed: None,
    }
}

/// The reply to a framing error: an error response, then close.
pub fn frame_error(e: &FrameError) -> Reply {
    let code = match e {
        FrameError::TooLarge { .. } => ErrorCode::RequestTooLarge,
        FrameError::TooDeep { .. } | FrameError::Malformed(_) => ErrorCode::MalformedRequest,
        FrameError::Io(_) => {
            return Reply {
                line: Vec::new(),
                after: After::Close,
                failed: None,
            };
        }
    };
    error("", ErrorPayload::new(code, e.to_string()), After::Close)
}

fn payload<T: DeserializeOwned>(body: &Payload<'_>) -> Result<T, ErrorPayload> {
    body.parse().map_err(|e| {
        ErrorPayload::new(
            ErrorCode::InvalidPayload,
            format!("invalid payload format: {e}"),
        )
    })
}

pub(super) fn internal(what: &str) -> ErrorPayload {
    tracing::error!("{what} did not answer");
    ErrorPayload::new(
        ErrorCode::InternalError,
        "internal error; nothing was granted",
    )
}

/// Writes an audit record and waits for it as `wait` says. Without the record, the request
/// must not succeed: the error is `AUDIT_UNAVAILABLE`.
async fn record(shared: &SharedRef, event: AuditEvent, wait: Wait) -> Result<(), ErrorPayload> {
    record_all(shared, vec![event], wait).await
}

/// Writes audit records as one unit (together or not at all) and waits for them as `wait`
/// says; `AUDIT_UNAVAILABLE` otherwise.
async fn record_all(
    shared: &SharedRef,
    events: Vec<AuditEvent>,
    wait: Wait,
) -> Result<(), ErrorPayload> {
    audited(shared.audit.send(AppendAll { events, wait }).await)
}

/// What an audit append's outcome means for the request: `AUDIT_UNAVAILABLE` unless the
/// records are as safe as their [`Wait`] asked.
fn audited(sent: Result<Result<(), String>, actix::MailboxError>) -> Result<(), ErrorPayload> {
    let why = match sent {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => "the audit writer is gone".to_string(),
    };
    tracing::error!(error = %why, "audit write failed; the request is refused");
    Err(ErrorPayload::new(
        ErrorCode::AuditUnavailable,
        "the decision could not be recorded in the audit log, so the request was refused",
    ))
}

/// Waits for a decision's store write and its audit records, written together; the error
/// when either failed. A decision that changed durable state (a store write) waits for its
/// records to be on disk too, so that no change outlives a power loss without its record; one
/// that changed nothing waits for them as [`Wait::Written`] says.
async fn settle(
    shared: &SharedRef,
    durable: Option<crate::durable::Pending>,
    events: Vec<AuditEvent>,
) -> Result<(), ErrorPayload> {
    let wait = if durable.is_some() {
        Wait::Durable
    } else {
        Wait::Written
    };
    let stored = async move {
        match durable {
            Some(p) => p.await,
            None => Ok(()),
        }
    };
    match futures_util::future::join(stored, record_all(shared, events, wait)).await {
        (Ok(()), audited) => audited,
        (Err(e), _) => {
            tracing::error!(error = %e, "capability store write failed; the request is refused");
            Err(ErrorPayload::new(
                ErrorCode::StoreUnavailable,
                "the capability store could not be written, so the request was refused",
            ))
        }
    }
}

/// Asks the registry to decide; what it decided, with its record and store write still to be
/// waited for ([`settle`]).
async fn ask<M, T>(shared: &SharedRef, msg: M) -> Result<Decided<T>, ErrorPayload>
where
    M: actix::Message<Result = Decided<T>> + Send + 'static,
    T: Send + 'static,
    CapabilityRegistry: actix::Handler<M>,
{
    let decided = shared
        .registry
        .send(msg)
        .await
        .map_err(|_| internal("capability registry"))?;
    crate::metrics::global().decision(decided.event.kind, decided.event.outcome);
    Ok(decided)
}

/// Asks the registry to decide, writes the decision's audit record, then hands back the answer.
async fn decide<M, T>(shared: &SharedRef, msg: M) -> Result<T, ErrorPayload>
where
    M: actix::Message<Result = Decided<T>> + Send + 'static,
    T: Send + 'static,
    CapabilityRegistry: actix::Handler<M>,
{
    let Decided {
        answer,
        event,
        durable,
    } = ask(shared, msg).await?;
    let granted = (event.outcome == Outcome::Granted)
        .then(|| event.capability_id.clone())
        .flatten();
    // The store write and the audit record proceed together; both must succeed (see settle).
    let Err(failure) = settle(shared, durable, vec![event]).await else {
        return Ok(answer);
    };
    // A grant that is not on record must not exist.
    if let Some(id) = granted {
        let _ = shared.registry.send::<Discard>(Discard(id)).await;
    }
    Err(failure)
}

/// A payload check's refusal, as `INVALID_PAYLOAD`.
fn invalid(message: String) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::InvalidPayload, message)
}

/// A frame that cannot be handled: the id to answer with (when one could be read), the error,
/// and whether the connection closes.
#[derive(Debug)]
pub struct Refused {
    /// The request's id, or empty.
    pub id: String,
    /// The `error_response` payload.
    pub error: ErrorPayload,
    /// `MALFORMED_REQUEST` closes the connection; the others keep it open.
    pub after: After,
}

/// Reads a frame as far as its envelope: the request type, its id and its payload, or why it
/// is refused — not JSON (`MALFORMED_REQUEST`, close), not an envelope (`INVALID_REQUEST`), an
/// unknown type (`UNKNOWN_MESSAGE_TYPE`). Apart from the actors, so that the fuzzer
/// (`fuzz/src/lib.rs`) runs exactly what the session runs.
pub fn parse_envelope(frame: &[u8]) -> Result<(RequestType, String, Payload<'_>), Refused> {
    // One pass, the payload left as text, and a pass that checks what the first skipped
    // (strings, numbers, nesting) as a tree would; anything either refuses is read again as a
    // tree below, which decides and words the error as it always has.
    let one_pass = serde_json::from_slice::<TextRequest<'_>>(frame)
        .and_then(|t| serde_json::from_slice::<Checked>(frame).map(|_| t));
    let (kind, id, body) = match one_pass {
        Ok(t) => (t.kind, t.id.unwrap_or_default(), Payload::Text(t.payload)),
        Err(_) => {
            let raw = parse_tree(frame)?;
            (
                raw.kind,
                raw.id.unwrap_or_default(),
                Payload::Tree(raw.payload),
            )
        }
    };
    match RequestType::parse(&kind) {
        Some(kind) => Ok((kind, id, body)),
        None => Err(Refused {
            id,
            error: ErrorPayload::unknown_type(&kind),
            after: After::KeepOpen,
        }),
    }
}

/// The envelope read as a tree, then as a [`RawRequest`]: malformed JSON closes the
/// connection; JSON that is no request is refused with the id, if one can be read.
fn parse_tree(frame: &[u8]) -> Result<RawRequest, Refused> {
    let value: Value = serde_json::from_slice(frame).map_err(|e| Refused {
        id: String::new(),
        error: ErrorPayload::new(ErrorCode::MalformedRequest, format!("malformed JSON: {e}")),
        after: After::Close,
    })?;
    let readable_id = value
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    RawRequest::deserialize(value).map_err(|e| Refused {
        id: readable_id,
        error: ErrorPayload::new(
            ErrorCode::InvalidRequest,
            format!("invalid request format: {e}"),
        ),
        after: After::KeepOpen,
    })
}

/// Handles one complete request frame, and counts it in the metrics (its type, how it ended,
/// how long it took).
pub async fn handle_frame(caller: Arc<Caller>, frame: Bytes) -> Reply {
    let _busy = crate::durable::Busy::enter();
    let received = Instant::now();
    let (kind, answer) = answer_frame(&caller, &frame, received).await;
    let outcome = match &answer {
        Ok(reply) => reply
            .failed
            .map_or(crate::metrics::RequestOutcome::Ok, |code| {
                crate::metrics::RequestOutcome::of_error(code)
            }),
        Err(r) => crate::metrics::RequestOutcome::of_error(r.error.code),
    };
    crate::metrics::global().request(kind, outcome, received.elapsed());
    answer.unwrap_or_else(|r| error(&r.id, r.error, r.after))
}

/// The answer to one frame, or why it is refused; with the request type, once known.
async fn answer_frame(
    caller: &Caller,
    frame: &[u8],
    received: Instant,
) -> (Option<RequestType>, Result<Reply, Refused>) {
    let (kind, id, body) = match parse_envelope(frame) {
        Ok(parsed) => parsed,
        Err(refused) => return (None, Err(refused)),
    };
    let refuse = |id: String, error| Refused {
        id,
        error,
        after: After::KeepOpen,
    };
    if kind.is_admin_only() && !caller.is_admin {
        let e = ErrorPayload::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} is only for administrators (root, the agent's own user, or ipc.admin_group)",
                kind.as_str()
            ),
        );
        return (Some(kind), Err(refuse(id, e)));
    }
    match dispatch(caller, kind, &id, body, received).await {
        Ok(reply) => (Some(kind), Ok(reply)),
        Err(e) => (Some(kind), Err(refuse(id, e))),
    }
}

/// Handles one request. The futures of the longer exchanges (a decision with its durable
/// writes, a secret operation, status) are boxed: every response future is moved a few times
/// on its way to the session, so it is kept to a few hundred bytes instead of several KiB.
async fn dispatch(
    c: &Caller,
    kind: RequestType,
    id: &str,
    body: Payload<'_>,
    received: Instant,
) -> Result<Reply, ErrorPayload> {
    let shared = &c.shared;
    Ok(match kind {
        RequestType::PingRequest => ok(
            kind,
            id,
            PingResponse {
                message: "pong".into(),
                server: "aether-vault-agent".into(),
            },
        ),
        RequestType::StatusRequest => ok(kind, id, Box::pin(status(shared, false)).await?),
        RequestType::MetricsRequest => {
            let text = Box::pin(crate::telemetry::metrics_text(shared)).await?;
            ok(
                kind,
                id,
                MetricsResponse {
                    content_type: crate::metrics::CONTENT_TYPE.into(),
                    text,
                },
            )
        }
        RequestType::AgentStatus => ok(kind, id, Box::pin(status(shared, true)).await?),
        RequestType::AgentReload => {
            // The same as SIGHUP.
            let o = super::reopen_and_reload(&shared.audit, &shared.policy, Trigger::Request)
                .await
                .map_err(|_| internal("policy watcher"))?;
            ok(
                kind,
                id,
                ReloadResponse {
                    status: if o.ok { "reloaded" } else { "failed" }.into(),
                    generation: o.generation,
                    files: o.files,
                    rules: o.rules,
                    error: o.error,
                    notice: config_notice(shared),
                },
            )
        }
        RequestType::AgentConfig => ok(kind, id, running_config(shared)),
        RequestType::AgentStop => {
            tracing::info!(caller = %c.identity.describe(), "stop requested over IPC");
            let _ = shared.commands.send(super::Command::Shutdown);
            ok(
                kind,
                id,
                StopResponse {
                    status: "stopping".into(),
                    message: "Agent is stopping".into(),
                },
            )
        }
        RequestType::CapabilityRequest => {
            let request: CapabilityRequest = payload(&body)?;
            checks::check_request(&request, &shared.config.requests).map_err(invalid)?;
            let msg = Grant {
                identity: c.identity.clone(),
                is_admin: c.is_admin,
                request,
                request_id: id.to_string(),
                received,
            };
            match Box::pin(decide(shared, msg)).await {
                Ok(answer) => ok(kind, id, answer),
                Err(e)
                    if matches!(
                        e.code,
                        ErrorCode::AuditUnavailable | ErrorCode::StoreUnavailable
                    ) =>
                {
                    let code = e.code;
                    let mut reply = ok(
                        kind,
                        id,
                        CapabilityResponse {
                            capability: None,
                            status: "error".into(),
                            message: e.error,
                            request_id: id.to_string(),
                            processing_time: u64::try_from(received.elapsed().as_nanos())
                                .unwrap_or(u64::MAX),
                            policy_result: None,
                            code: Some(code),
                        },
                    );
                    reply.failed = Some(code);
                    reply
                }
                Err(e) => return Err(e),
            }
        }
        RequestType::CapabilityValidate => {
            let req: ValidateRequest = payload(&body)?;
            checks::check_validate(&req, &shared.config.requests).map_err(invalid)?;
            let msg = Validate {
                identity: c.identity.clone(),
                capability_id: req.capability_id,
                context: req.context,
                request_id: id.to_string(),
                received,
            };
            ok(kind, id, Box::pin(decide(shared, msg)).await?)
        }
        RequestType::CapabilityRevoke => {
            let req: RevokeRequest = payload(&body)?;
            checks::check_revoke(&req, &shared.config.requests).map_err(invalid)?;
            let msg = Revoke {
                identity: c.identity.clone(),
                is_admin: c.is_admin,
                capability_id: req.capability_id,
                reason: req.reason,
                request_id: id.to_string(),
            };
            ok(kind, id, Box::pin(decide(shared, msg)).await??)
        }
        RequestType::PolicyList => {
            let st = shared
                .policy
                .send(GetStatus)
                .await
                .map_err(|_| internal("policy watcher"))?;
            ok(kind, id, policy_list(&st))
        }
        RequestType::PolicyTest => Box::pin(policy_test(c, kind, id, body)).await?,
        RequestType::SecretRead
        | RequestType::SecretWrite
        | RequestType::SecretList
        | RequestType::SecretDelete => Box::pin(secret_op(c, kind, id, body)).await?,
        RequestType::CapabilityList => Box::pin(capability_list(c, kind, id, body)).await?,
        RequestType::CredentialList => {
            ok(kind, id, super::credential_requests::list(shared).await?)
        }
        RequestType::CredentialTest => {
            let test = super::credential_requests::test(shared, &c.identity, id, body);
            ok(kind, id, Box::pin(test).await?)
        }
    })
}

/// `policy_test`: explains a decision for a given identity against the set in force (audited).
async fn policy_test(
    c: &Caller,
    kind: RequestType,
    id: &str,
    body: Payload<'_>,
) -> Result<Reply, ErrorPayload> {
    let shared = &c.shared;
    let req: PolicyTestRequest = payload(&body)?;
    checks::check_policy_test(&req, &shared.config.requests).map_err(invalid)?;
    let identity =
        resolve(&req.identity).map_err(|e| ErrorPayload::new(ErrorCode::InvalidPayload, e))?;
    let st = shared
        .policy
        .send(GetStatus)
        .await
        .map_err(|_| internal("policy watcher"))?;
    let limits = GrantLimits::from(&shared.config.capability_engine);
    let answer = explain(&st.set, identity, &req.resource, &req.actions, &limits);
    let mut ev = AuditEvent::new(EventType::PolicyEvaluation, Outcome::Success)
        .by(&c.identity)
        .request(id)
        .because(format!(
            "policy test for uid {}: {} ({})",
            answer.identity.uid, answer.result.decision, answer.result.reasoning
        ));
    ev.resource = Some(req.resource.clone());
    ev.actions = req.actions.clone();
    ev.rules = answer.result.applied_rules.clone();
    ev.policy_generation = Some(answer.generation);
    record(shared, ev, Wait::Written).await?;
    Ok(ok(kind, id, answer))
}

/// `capability_list`: the caller's capabilities (an admin's: anyone's), filtered.
async fn capability_list(
    c: &Caller,
    kind: RequestType,
    id: &str,
    body: Payload<'_>,
) -> Result<Reply, ErrorPayload> {
    let shared = &c.shared;
    let req: ListRequest = if body.is_null() {
        ListRequest::default()
    } else {
        payload(&body)?
    };
    if let Some(f) = &req.filter {
        crate::capability::listing::check_filter(f, &shared.config.requests).map_err(invalid)?;
    }
    let msg = List {
        identity: c.identity.clone(),
        is_admin: c.is_admin,
        filter: req.filter.unwrap_or_default(),
    };
    let answer = shared
        .registry
        .send(msg)
        .await
        .map_err(|_| internal("capability registry"))??;
    Ok(ok(kind, id, answer))
}

/// A secret message: redeem the capability (audited, one use), act on the backend (off the
/// event loop), record the access, answer.
///
/// The backend acts only once the redemption is durable, except for a read or list on a
/// backend whose reads only look at the agent's memory (the file backend): nobody can observe
/// those, so they happen on the event loop while the redemption is being written, and the
/// redemption record and the access record are written as one unit — one `fdatasync` instead
/// of two in a row. The answer still leaves only once both records (and the use, for a
/// use-limited capability) are as safe as [`settle`] asks, and if they cannot be written the
/// value is not sent.
async fn secret_op(
    c: &Caller,
    kind: RequestType,
    id: &str,
    body: Payload<'_>,
) -> Result<Reply, ErrorPayload> {
    let shared = &c.shared;
    let action = kind.secret_action().unwrap_or("read");
    let req: SecretRequest = payload(&body)?;
    checks::check_capability_id(&req.capability_id).map_err(invalid)?;
    if action == "write" && req.data.as_ref().is_none_or(|d| d.is_empty()) {
        return Err(ErrorPayload::new(
            ErrorCode::InvalidPayload,
            "secret_write needs data with at least one field",
        ));
    }
    let redeem = Redeem {
        identity: c.identity.clone(),
        capability_id: req.capability_id.clone(),
        action,
        path: req.path.clone(),
        request_id: id.to_string(),
    };
    // For a read or list: the redemption's store write and record, still to be waited for.
    let mut redeemed = None;
    let path = if matches!(action, "read" | "list") && shared.secrets.reads_are_local() {
        let Decided {
            answer,
            event,
            durable,
        } = ask(shared, redeem).await?;
        match answer {
            Ok(path) => {
                redeemed = Some((durable, event));
                path
            }
            Err(refused) => {
                settle(shared, durable, vec![event]).await?;
                return Err(refused);
            }
        }
    } else {
        decide(shared, redeem).await??
    };
    let backend = shared.secrets.clone();
    let (p, version, data) = (path.clone(), req.version, req.data);
    let operate = move || {
        let at = SecretResponse {
            path: p.clone(),
            ..Default::default()
        };
        match action {
            "read" => backend.read(&p, version).map(|v| SecretResponse {
                version: Some(v.version),
                created_time: Some(v.created_time),
                data: Some(v.data),
                ..at
            }),
            "write" => backend
                .write(&p, data.unwrap_or_default())
                .map(|v| SecretResponse {
                    version: Some(v),
                    ..at
                }),
            "list" => backend.list(&p).map(|keys| SecretResponse {
                keys: Some(keys),
                ..at
            }),
            _ => backend.delete(&p).map(|()| SecretResponse {
                deleted: Some(true),
                ..at
            }),
        }
    };
    // A read that only looks at memory is done here; anything that may wait for a disk or the
    // network goes to a blocking thread, off the event loop.
    let result = if redeemed.is_some() {
        operate()
    } else {
        actix_rt::task::spawn_blocking(operate)
            .await
            .map_err(|_| internal("secrets backend"))?
    };
    crate::metrics::global().secret_call(action, crate::metrics::labels::secret_result(&result));
    let outcome = match &result {
        Ok(_) => Outcome::Success,
        // The client's mistake, not the agent's: a notice, not an error.
        Err(SecretError::NotFound(_) | SecretError::Invalid(_)) => Outcome::Rejected,
        Err(_) => Outcome::Failure,
    };
    let mut ev = AuditEvent::new(EventType::SecretAccess, outcome)
        .by(&c.identity)
        .request(id)
        .capability(&req.capability_id);
    ev.resource = Some(format!("secret:/{path}"));
    ev.actions = vec![action.to_string()];
    ev.version = result.as_ref().ok().and_then(|r| r.version);
    if let Err(e) = &result {
        ev.reason = Some(e.to_string());
    }
    match redeemed {
        Some((durable, redemption)) => settle(shared, durable, vec![redemption, ev]).await?,
        // A write or delete changed the backend: its record goes to disk before the answer.
        None if matches!(action, "read" | "list") => record(shared, ev, Wait::Written).await?,
        None => record(shared, ev, Wait::Durable).await?,
    }
    let answer = result.map_err(|e| match e {
        SecretError::NotFound(_) => ErrorPayload::new(ErrorCode::SecretNotFound, e.to_string()),
        SecretError::Invalid(_) => ErrorPayload::new(ErrorCode::InvalidPayload, e.to_string()),
        SecretError::Unavailable(_) => {
            ErrorPayload::new(ErrorCode::BackendUnavailable, e.to_string())
        }
        SecretError::Denied(_) => ErrorPayload::new(ErrorCode::BackendDenied, e.to_string()),
        SecretError::Misconfigured(_) => {
            ErrorPayload::new(ErrorCode::BackendMisconfigured, e.to_string())
        }
        SecretError::Storage(_) => {
            tracing::error!(error = %e, "secrets storage failed");
            ErrorPayload::new(
                ErrorCode::InternalError,
                "the secrets store failed; see the agent's log",
            )
        }
    })?;
    Ok(ok(kind, id, answer))
}
