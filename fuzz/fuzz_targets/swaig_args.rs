#![no_main]
//! libFuzzer entry for [`swagent_fuzz::swaig_args`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| swagent_fuzz::swaig_args(data));
