//! The audit trail: one JSON line per decision, for the people who must trust it afterwards.
//!
//! [`event`] defines the record; [`bound`] cuts its long fields (with a digest of the whole)
//! before it is sealed; [`summary`] counts a uid's refusals beyond its budget into summary
//! records; [`chain`] seals records into a SHA-256 hash chain and verifies it; [`file`] appends
//! sealed records durably (group commit) and rotates them, [`retention`] deciding which rotated
//! files go; [`seal`] is the signed statement of where the chain stands, which [`sealer`]
//! writes at intervals outside the log directory, and [`evidence`] holds a log to those seals
//! (`audit verify`), so that a cut tail, an emptied or replaced log and a deleted rotated file
//! show. The `AuditWriter` actor feeds a
//! writer thread and answers each append only after its record is on disk, so a session holds
//! its response until the decision is on record.

pub mod bound;
pub mod chain;
pub mod event;
pub mod evidence;
pub mod file;
pub mod retention;
pub mod seal;
pub mod sealer;
pub mod summary;

pub use event::{AuditEvent, AuditIdentity, CredentialRef, EventType, Outcome};
pub use file::{AuditError, AuditLog, Rotation, WrittenBy};
