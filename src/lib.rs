//! aether-vault-agent: a local access-control agent.
//!
//! Local processes connect to a Unix socket; the kernel tells the agent who they are
//! ([`identity`]); policy files decide ([`policy`]); the agent issues short-lived, signed
//! capabilities ([`capability`]) and records every decision ([`audit`]). The actors in
//! [`actors`] wire these pure parts to the socket; [`server::run`] is the seam that tests and
//! socket activation plug a listener into.

pub mod actors;
pub mod audit;
pub mod capability;
pub mod cli;
pub mod client;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod doctor;
pub mod durable;
pub mod identity;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod oplog;
pub mod policy;
pub mod protocol;
pub mod resource;
pub mod secrets;
pub mod server;
pub mod supervise;
pub mod telemetry;
pub mod timefmt;
pub mod transport;
pub mod trust;
pub mod user_layout;
pub mod yaml;
