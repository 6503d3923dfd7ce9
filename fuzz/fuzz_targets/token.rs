#![no_main]
//! libFuzzer entry for [`swagent_fuzz::token`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| swagent_fuzz::token(data));
