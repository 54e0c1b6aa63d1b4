//! Fuzz target: raw bytes from a client, through the session's reader in several chunkings,
//! then every frame through the envelope and payload parsing of every request type. The
//! invariants are in `aether_vault_agent_fuzz::check_request_stream`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_vault_agent_fuzz::check_request_stream(data);
});
