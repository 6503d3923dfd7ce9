#![no_main]
//! libFuzzer entry for [`swagent_fuzz::agent_load`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| swagent_fuzz::agent_load(data));
