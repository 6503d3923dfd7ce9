//! The outbox in memory, for `serve` without `--outbox`: summaries are
//! still delivered and retried, but a restart loses what is undelivered
//! (`serve` says so at start, and `check --production` fails it).

use std::sync::Mutex;

use super::{now_ms, Dead, Entry, Listed, Store, StoreError};

#[derive(Default)]
pub struct Memory {
    pending: Mutex<Vec<Entry>>,
    dead: Mutex<Vec<Entry>>,
}

impl Store for Memory {
    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        self.pending
            .lock()
            .expect("not poisoned")
            .push(entry.clone());
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Entry, StoreError> {
        let pending = self.pending.lock().expect("not poisoned");
        let found = pending.iter().find(|e| e.id == id).cloned();
        found.ok_or_else(|| StoreError::NotFound(id.to_owned()))
    }

    fn pending_ids(&self) -> Result<Vec<Listed>, StoreError> {
        Ok(listed(&self.pending.lock().expect("not poisoned")))
    }

    fn dead_ids(&self) -> Result<Vec<Listed>, StoreError> {
        Ok(listed(&self.dead.lock().expect("not poisoned")))
    }

    fn pending(&self) -> Result<Vec<Entry>, StoreError> {
        Ok(self.pending.lock().expect("not poisoned").clone())
    }

    fn dead(&self) -> Result<Vec<Entry>, StoreError> {
        Ok(self.dead.lock().expect("not poisoned").clone())
    }

    fn remove(&self, id: &str) -> Result<(), StoreError> {
        let mut found = false;
        for list in [&self.pending, &self.dead] {
            let mut list = list.lock().expect("not poisoned");
            let before = list.len();
            list.retain(|e| e.id != id);
            found |= list.len() < before;
        }
        match found {
            true => Ok(()),
            false => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    fn bury(&self, entry: &Entry, reason: &str) -> Result<(), StoreError> {
        self.pending
            .lock()
            .expect("not poisoned")
            .retain(|e| e.id != entry.id);
        self.dead.lock().expect("not poisoned").push(Entry {
            dead: Some(Dead {
                reason: reason.to_owned(),
                at_ms: now_ms(),
            }),
            ..entry.clone()
        });
        Ok(())
    }

    fn revive(&self, id: Option<&str>) -> Result<usize, StoreError> {
        let mut dead = self.dead.lock().expect("not poisoned");
        let (chosen, kept): (Vec<Entry>, Vec<Entry>) =
            dead.drain(..).partition(|e| id.is_none_or(|id| e.id == id));
        *dead = kept;
        if let (Some(id), true) = (id, chosen.is_empty()) {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        let n = chosen.len();
        let mut pending = self.pending.lock().expect("not poisoned");
        pending.extend(chosen.into_iter().map(|e| Entry {
            dead: None,
            retried_ms: Some(now_ms()),
            ..e
        }));
        Ok(n)
    }

    fn durable(&self) -> bool {
        false
    }
}

fn listed(entries: &[Entry]) -> Vec<Listed> {
    entries
        .iter()
        .map(|e| Listed {
            id: e.id.clone(),
            bytes: e.stored_bytes(),
        })
        .collect()
}
