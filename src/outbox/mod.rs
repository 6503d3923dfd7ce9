//! The summary outbox: every summary `/post_prompt` accepted, kept until it
//! is delivered, given up on (and set aside for an operator), or dropped by
//! one. [`Store`] is where entries live (a folder, or memory when `serve`
//! has no `--outbox`); [`Outbox`] adds the bounds and the counts the
//! metrics read; the [`worker`] delivers. A Redis stream would be one more
//! [`Store`].

mod files;
mod memory;
pub mod worker;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use files::Files;
pub use memory::Memory;

/// One summary, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `sum_<received ms>_<random>`: sorts by age, and every delivery
    /// attempt carries it, so a receiver can drop duplicates.
    pub id: String,
    /// The agent whose `/post_prompt` took it.
    pub agent: String,
    /// When it was received, in milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// When an operator last sent it back for delivery: its age counts
    /// from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_ms: Option<u64>,
    /// The request body exactly as the platform sent it.
    pub request: String,
    /// Why it was given up on, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead: Option<Dead>,
}

/// Why and when delivery was given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dead {
    pub reason: String,
    pub at_ms: u64,
}

impl Entry {
    /// A summary received now from `agent`'s `/post_prompt`.
    pub fn received(agent: &str, request: &[u8]) -> Entry {
        let received_ms = now_ms();
        Entry {
            id: format!("sum_{received_ms:013}_{}", crate::random::hex(8)),
            agent: agent.to_owned(),
            received_ms,
            retried_ms: None,
            request: String::from_utf8_lossy(request).into_owned(),
            dead: None,
        }
    }

    /// Whether `id` has the shape of an entry's: an id typed by an
    /// operator never becomes a path outside the outbox.
    pub fn valid_id(id: &str) -> bool {
        let Some(rest) = id.strip_prefix("sum_") else {
            return false;
        };
        rest.len() == 30
            && rest.bytes().enumerate().all(|(i, b)| match i {
                0..13 => b.is_ascii_digit(),
                13 => b == b'_',
                _ => b.is_ascii_hexdigit() && !b.is_ascii_uppercase(),
            })
    }

    /// Milliseconds since it was received, or sent back by an operator.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.retried_ms.unwrap_or(self.received_ms))
    }

    /// Its size as stored (its JSON), for the outbox's bound.
    pub fn stored_bytes(&self) -> u64 {
        self.to_json().len() as u64
    }

    /// How a store keeps it.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an entry serializes")
    }

    /// When the entry named `id` was received, from the id itself.
    pub fn received_ms_of(id: &str) -> Option<u64> {
        id.strip_prefix("sum_")?.get(..13)?.parse().ok()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why a store could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the outbox `{path}` cannot be written: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no summary `{0}` in the outbox")]
    NotFound(String),
    #[error("`{0}` is not an outbox: it has no `pending`, `dead` and `tmp` folders (`serve --outbox` makes them)")]
    NotAnOutbox(String),
}

/// An entry as listed: its id and its stored size, not its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub bytes: u64,
}

/// Where entries live. Each call is durable when [`Store::durable`] says
/// so: an entry `put` has returned survives a crash.
pub trait Store: Send + Sync {
    /// Keeps a new entry.
    fn put(&self, entry: &Entry) -> Result<(), StoreError>;
    /// One waiting entry, whole.
    fn get(&self, id: &str) -> Result<Entry, StoreError>;
    /// The entries waiting for delivery, oldest first, without their bodies.
    fn pending_ids(&self) -> Result<Vec<Listed>, StoreError>;
    /// The entries given up on, oldest first, without their bodies.
    fn dead_ids(&self) -> Result<Vec<Listed>, StoreError>;
    /// The entries waiting for delivery, whole, oldest first.
    fn pending(&self) -> Result<Vec<Entry>, StoreError>;
    /// The entries given up on, whole, oldest first.
    fn dead(&self) -> Result<Vec<Entry>, StoreError>;
    /// Delivered, or dropped: gone.
    fn remove(&self, id: &str) -> Result<(), StoreError>;
    /// Given up on: set aside with why.
    fn bury(&self, entry: &Entry, reason: &str) -> Result<(), StoreError>;
    /// Sent back for delivery (all given-up entries when `id` is `None`);
    /// how many.
    fn revive(&self, id: Option<&str>) -> Result<usize, StoreError>;
    /// Whether entries survive a restart.
    fn durable(&self) -> bool;
}

/// The bound of an outbox: past either, `/post_prompt` answers 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub entries: u64,
    pub bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            entries: 10_000,
            bytes: 1 << 30,
        }
    }
}

/// Why a summary was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("the outbox is full ({entries} summaries, {bytes} bytes; the bound is {limit})")]
    Full {
        entries: u64,
        bytes: u64,
        limit: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A store with its bound, its counts, and a bell the worker waits on.
pub struct Outbox {
    store: Box<dyn Store>,
    limits: Limits,
    /// Entries and bytes held, given up ones included: they take room too.
    /// Locked across a put's check, write and count, so concurrent puts
    /// cannot pass the bound together.
    held: Mutex<(u64, u64)>,
    /// Entries put since the worker last looked, so it need not list the
    /// store for each.
    arrivals: Mutex<Vec<Listed>>,
    /// Rung when an entry arrives, so it is tried at once.
    pub arrived: tokio::sync::Notify,
}

impl Outbox {
    /// `store` with its bound; the counts are what it holds now.
    pub fn new(store: Box<dyn Store>, limits: Limits) -> Result<Arc<Outbox>, StoreError> {
        let outbox = Outbox {
            store,
            limits,
            held: Mutex::new((0, 0)),
            arrivals: Mutex::new(Vec::new()),
            arrived: tokio::sync::Notify::new(),
        };
        outbox.rescan()?;
        Ok(Arc::new(outbox))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, (u64, u64)> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `entry`, within the bound (blocking: a synced write).
    pub fn put(&self, entry: &Entry) -> Result<(), PutError> {
        let size = entry.stored_bytes();
        let mut held = self.held();
        let (entries, bytes) = *held;
        if entries + 1 > self.limits.entries || bytes + size > self.limits.bytes {
            return Err(PutError::Full {
                entries,
                bytes,
                limit: format!(
                    "{} summaries or {} bytes",
                    self.limits.entries, self.limits.bytes
                ),
            });
        }
        self.store.put(entry)?;
        *held = (entries + 1, bytes + size);
        drop(held);
        let listed = Listed {
            id: entry.id.clone(),
            bytes: size,
        };
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(listed);
        self.arrived.notify_one();
        Ok(())
    }

    /// The entries put since the last call.
    pub fn arrivals(&self) -> Vec<Listed> {
        std::mem::take(&mut *self.arrivals.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Entries and bytes held, given up ones included.
    pub fn usage(&self) -> (u64, u64) {
        *self.held()
    }

    /// The entries waiting, oldest first, without their bodies, counting
    /// all the store holds anew: an operator's `retry` or `drop` changes it
    /// from outside (blocking: it lists the store).
    pub fn rescan(&self) -> Result<Vec<Listed>, StoreError> {
        let mut held = self.held();
        let pending = self.store.pending_ids()?;
        let dead = self.store.dead_ids()?;
        let all = pending.iter().chain(&dead);
        *held = (
            (pending.len() + dead.len()) as u64,
            all.map(|l| l.bytes).sum(),
        );
        Ok(pending)
    }

    /// One waiting entry, whole (blocking: it reads the store).
    pub fn load(&self, id: &str) -> Result<Entry, StoreError> {
        self.store.get(id)
    }

    /// Delivered: gone, and no longer counted.
    pub fn delivered(&self, listed: &Listed) -> Result<(), StoreError> {
        let mut held = self.held();
        self.store.remove(&listed.id)?;
        held.0 = held.0.saturating_sub(1);
        held.1 = held.1.saturating_sub(listed.bytes);
        Ok(())
    }

    /// Given up on: set aside for an operator, still counted.
    pub fn bury(&self, entry: &Entry, reason: &str) -> Result<(), StoreError> {
        self.store.bury(entry, reason)
    }

    pub fn durable(&self) -> bool {
        self.store.durable()
    }
}

/// The outbox `serve` runs with: the folder given, else memory.
pub fn open(dir: Option<&std::path::Path>, limits: Limits) -> Result<Arc<Outbox>, StoreError> {
    match dir {
        Some(dir) => Outbox::new(Box::new(Files::open(dir)?), limits),
        None => Outbox::new(Box::<Memory>::default(), limits),
    }
}

#[cfg(test)]
mod tests {
    use super::Entry;

    #[test]
    fn ids_are_checked_before_they_become_paths() {
        let entry = Entry::received("a", b"{}");
        assert!(Entry::valid_id(&entry.id), "{}", entry.id);
        for bad in [
            "sum_../../etc/passwd",
            "sum_1796697144744_53DF756C1D773B20",
            "sum_1796697144744_53df756c1d773b2",
            "x_1796697144744_53df756c1d773b20",
            "",
        ] {
            assert!(!Entry::valid_id(bad), "{bad}");
        }
    }
}
