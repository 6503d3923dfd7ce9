//! Integration tests: the real `swagent` binary, real processes, real HTTP on
//! loopback. One test crate, one module per feature, so one binary is linked.

mod actions;
mod ai;
mod conformance;
mod deploy;
mod docs;
mod faults;
mod foreach;
mod function_result;
mod graph;
mod guards;
mod handlers;
mod hostile;
mod https;
mod incident;
mod inprocess;
mod layout;
mod lifecycle;
mod ops;
mod perimeter;
mod props;
mod raw;
mod serve;
mod summary;
mod tools;
mod util;
mod validate;
mod webhooks;
