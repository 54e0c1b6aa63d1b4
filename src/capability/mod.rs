//! Capabilities: short-lived, signed grants of actions on a resource to one process owner.
//!
//! - [`signing`]: the agent's Ed25519 key (created once, 0600, reused) and the canonical
//!   encoding that is signed.
//! - [`grant`]: turning a request and a policy decision into a capability: ids, type, TTL and
//!   use limits.
//! - [`issue`]: the capability a grant issues, before it is signed, and its holder.
//! - [`constraints`]: checking the restrictions a capability carries.
//! - [`record`]: a capability as the registry holds it (holder, revocation) and validation.
//! - [`redeem`]: what a use of a capability checks beyond its record (policy in force, path).
//! - [`sign_worker`]: the thread that signs capabilities off the registry's event loop.
//! - [`listing`]: who may list which capabilities, the filters (equality, `timeRange`,
//!   `metadata`), the order (`sortBy`, `sortOrder`; newest first by default) and the page.
//! - [`per_uid`]: what one uid may hold and ask for (active cap, retention quota, grant rate).
//!
//! Plain functions and data; the `CapabilityRegistry` actor calls them.

pub mod constraints;
pub mod grant;
pub mod issue;
pub mod listing;
pub mod per_uid;
pub mod record;
pub mod redeem;
pub mod sign_worker;
pub mod signing;
pub mod store;

pub use grant::{
    GrantLimits, GrantPlan, derive_type, grant_message, new_capability_id, plan_grant,
};
pub use record::{CapStatus, Record, Revocation};
pub use signing::{KeyError, Signer};
