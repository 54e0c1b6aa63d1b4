//! Fuzz target: two glob patterns and choices of strings, through the containment and
//! intersection checks that decide pattern requests. The invariants are in
//! `aether_vault_agent_fuzz::check_glob`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_vault_agent_fuzz::check_glob(data);
});
