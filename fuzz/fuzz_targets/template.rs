#![no_main]
//! libFuzzer entry for [`swagent_fuzz::template`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| swagent_fuzz::template(data));
