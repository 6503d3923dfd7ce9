#![no_main]
//! libFuzzer entry for [`swagent_fuzz::signature`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| swagent_fuzz::signature(data));
