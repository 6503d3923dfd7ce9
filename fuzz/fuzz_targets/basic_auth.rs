#![no_main]
//! libFuzzer entry for [`swagent_fuzz::basic_auth`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| swagent_fuzz::basic_auth(data));
