//! Capabilities: short-lived, signed grants of actions on a resource to one process owner.
//!
//! - [`signing`]: the agent's Ed25519 key (created once, 0600, reused) and the canonical
//!   encoding that is signed.
//! - [`grant`]: turning a request and a policy decision into a capability: ids, type, TTL and
//!   use limits.
//! - [`constraints`]: checking the restrictions a capability carries.
//! - [`listing`]: the list filters beyond equality (`timeRange`, `metadata`) and the order.
//! - [`record`]: a capability as the registry holds it (holder, revocation) and validation.
//! - [`redeem`]: what a use of a capability checks beyond its record (policy in force, path).
//! - [`per_uid`]: what one uid may hold and ask for (active cap, retention quota, grant rate).
//!
//! Plain functions and data; the `CapabilityRegistry` actor calls them.

pub mod constraints;
pub mod grant;
pub mod listing;
pub mod per_uid;
pub mod record;
pub mod redeem;
pub mod signing;
pub mod store;

pub use grant::{
    GrantLimits, GrantPlan, derive_type, grant_message, new_capability_id, plan_grant,
};
pub use record::{CapStatus, Record, Revocation};
pub use signing::{KeyError, Signer};
