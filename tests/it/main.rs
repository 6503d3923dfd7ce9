//! Integration tests: the real `swagent` binary, real processes, real HTTP on
//! loopback. One test crate, one module per feature, so one binary is linked.

mod props;
mod serve;
mod util;
mod validate;
