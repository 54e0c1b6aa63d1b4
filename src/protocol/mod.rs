//! The wire protocol, apart from any transport: the envelope every message travels in, the
//! message types, their payloads and the error codes. Everything here is plain data with serde
//! derives; nothing here touches a socket or an actor.
//!
//! Compatible with the upstream Aether Vault agent protocol: one JSON envelope per message,
//! responses written as compact JSON followed by `\n`. See `docs/protocol.md` for examples.

pub mod checks;
pub mod credentials;
pub mod envelope;
pub mod errors;
pub mod messages;
pub mod types;

pub use envelope::{Checked, Envelope, PROTOCOL_VERSION, Payload, RawRequest, TextRequest};
pub use errors::{ErrorCode, ErrorPayload};
pub use messages::{RequestType, ResponseType};
