//! systemd credentials: any unit gets its secrets at start, with no client code at all.
//!
//! A unit with `LoadCredential=ID:/run/aether-vault/credentials.sock` makes the service
//! manager, when it starts the unit, connect to the agent's credentials socket from a process
//! already in the unit's cgroup, bound to the abstract address `\0RANDOM/unit/UNIT/ID`
//! ([`address`]), read until end of file and store what it read as `$CREDENTIALS_DIRECTORY/ID`.
//! The socket speaks no protocol: the agent identifies the caller, decides ([`decide`]: a plain
//! function), records the decision durably in the audit log, writes the value and closes.
//! Mappings come from the policy files' `credentials` lists
//! ([`crate::policy::credentials`]); the names are checked as systemd checks them ([`names`]).
//! The actor that serves the socket is [`crate::actors::credentials`].

pub mod address;
pub mod decide;
pub mod names;

pub use address::{AddressError, PeerAddress};
pub use decide::{Answer, Delivery, FAIL_START_BYTES, Refusal, Verdict, decide, explain, render};
