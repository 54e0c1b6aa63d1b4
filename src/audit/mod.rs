//! The audit trail: one JSON line per decision, for the people who must trust it afterwards.
//!
//! [`event`] defines the record; [`file`] appends records to the log file. The `AuditWriter`
//! actor owns the open file and answers each append only after the line is written, so a
//! session can hold its response until the decision is on record.

pub mod chain;
pub mod event;
pub mod file;

pub use event::{AuditEvent, AuditIdentity, EventType, Outcome};
pub use file::{AuditError, AuditFile};
