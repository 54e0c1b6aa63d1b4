//! Fuzz target: bytes as a policy file, through the loader's JSON and YAML parse and validate
//! functions. The invariants are in `aether_vault_agent_fuzz::check_policy`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aether_vault_agent_fuzz::check_policy(data);
});
