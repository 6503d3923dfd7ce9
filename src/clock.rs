//! The wall clock, in whole seconds since the Unix epoch: token and code
//! expiries, grants and log sampling all count in it.

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
