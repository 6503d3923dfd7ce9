//! The server log: text lines on stderr (`RUST_LOG`, through env_logger),
//! and the sampling of lines a stranger can multiply at will.
//!
//! What swagent itself logs on a refusal is sampled where it is written
//! ([`Sampler`]). actix-http logs one unsampled ERROR line per malformed
//! request head, before any middleware sees it, so those lines are sampled
//! here, in the logger: the log is not a place a stranger can fill.

use std::sync::atomic::{AtomicU64, Ordering};

use log::{Level, Log, Metadata, Record};

/// Lets one event through per second and counts the rest, for events that
/// an attacker can trigger at will (refused requests).
#[derive(Default)]
pub struct Sampler {
    second: AtomicU64,
    suppressed: AtomicU64,
}

impl Sampler {
    /// `Some(n)` when this event should be written, `n` being how many were
    /// dropped since the last one written.
    pub fn admit(&self) -> Option<u64> {
        let now = crate::clock::now();
        if self.second.swap(now, Ordering::Relaxed) == now {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        } else {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        }
    }
}

/// Log targets whose warnings and errors a stranger causes: actix-http's
/// connection dispatcher says so for every request head it cannot parse.
const STRANGERS: &str = "actix_http::";

/// env_logger, with [`STRANGERS`]' warnings and errors sampled.
struct Sampled {
    inner: env_logger::Logger,
    strangers: Sampler,
}

impl Log for Sampled {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.inner.matches(record) {
            return;
        }
        if record.level() > Level::Warn || !record.target().starts_with(STRANGERS) {
            return self.inner.log(record);
        }
        match self.strangers.admit() {
            None => {}
            Some(0) => self.inner.log(record),
            Some(n) => self.inner.log(
                &Record::builder()
                    .args(format_args!(
                        "{} ({n} more such lines since the last one)",
                        record.args()
                    ))
                    .level(record.level())
                    .target(record.target())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            ),
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Sets up the server log: `RUST_LOG`, `info` by default. A second call
/// (tests running `serve` in-process) keeps the first logger.
pub fn init() {
    let inner =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
    let max = inner.filter();
    let logger = Sampled {
        inner,
        strangers: Sampler::default(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}
