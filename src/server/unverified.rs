//! The memory that request bodies may hold before anything vouches for
//! their sender.
//!
//! With `SIGNALWIRE_SIGNING_KEY` set, a webhook's body is read to check its
//! signature before Basic Auth is looked at (`perimeter`). Anyone who can
//! reach the port may then make swagent hold a body each, up to
//! `SWML_MAX_REQUEST_SIZE`, until the body timeout: in review 12, 500 slow
//! 1 MiB bodies took the process from 12 to 667 MB. Such bodies share one
//! budget instead. A chunk that would go past it ends its request with
//! `503 overloaded` and the connection is closed, which frees what that
//! request held. One address (as the lock-out counts them) may hold an
//! eighth of the budget at most, or one body of the largest size if that
//! is more, so one stranger cannot keep it full for everyone; strangers on
//! many addresses still can, for as long as they keep sending.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::limits::client_unit;

/// Bytes that unverified bodies may hold at once, unless
/// [`UNVERIFIED_BODIES_VAR`] says otherwise: thousands of webhook bodies.
pub const DEFAULT_UNVERIFIED_BODIES: usize = 16 * 1024 * 1024;
/// Sets the budget, in bytes; at least `SWML_MAX_REQUEST_SIZE`.
pub const UNVERIFIED_BODIES_VAR: &str = "SWAGENT_UNVERIFIED_BODIES";
/// One address (an IPv4 address or an IPv6 /64, as the lock-out counts)
/// holds at most this share of the budget, so that one stranger cannot keep
/// it full for everyone: review 13 did, with 360 connections every 10 s.
const ADDRESS_SHARE: usize = 8;

/// A chunk that would go past the budget: its request is refused (503
/// `overloaded`) and its connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// The shared budget.
pub struct Unverified {
    bytes: Semaphore,
    capacity: usize,
    /// The most one address holds: a share, but never less than one body.
    per_address: usize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

impl Unverified {
    /// A budget of `capacity` bytes, where one address may hold at least
    /// `largest_body`.
    pub fn new(capacity: usize, largest_body: usize) -> Unverified {
        Unverified {
            bytes: Semaphore::new(capacity.min(Semaphore::MAX_PERMITS)),
            capacity,
            per_address: (capacity / ADDRESS_SHARE).max(largest_body).min(capacity),
            by_address: Mutex::new(HashMap::new()),
        }
    }

    /// An empty claim on the budget, for one body from `client`.
    pub fn claim(&self, client: Option<IpAddr>) -> Held<'_> {
        Held {
            budget: self,
            permit: None,
            unit: client.map(client_unit),
            charged: 0,
        }
    }

    /// The budget, and the most one address may hold of it.
    pub fn limits(&self) -> (usize, usize) {
        (self.capacity, self.per_address)
    }

    /// Bytes held now.
    pub fn in_use(&self) -> usize {
        self.capacity
            .min(Semaphore::MAX_PERMITS)
            .saturating_sub(self.bytes.available_permits())
    }

    fn accounts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one body holds of the budget; given back when dropped.
pub struct Held<'a> {
    budget: &'a Unverified,
    permit: Option<SemaphorePermit<'a>>,
    /// The address it is charged to, and how much.
    unit: Option<IpAddr>,
    charged: usize,
}

impl Held<'_> {
    /// Adds `n` more bytes to the claim, or refuses them without waiting:
    /// waiting would let a flood hold what it has for longer.
    pub fn take(&mut self, n: usize) -> Result<(), Overloaded> {
        if n == 0 {
            return Ok(());
        }
        let Ok(permits) = u32::try_from(n) else {
            return Err(Overloaded);
        };
        if let Some(unit) = self.unit {
            let mut accounts = self.budget.accounts();
            let held = accounts.entry(unit).or_insert(0);
            if *held + n > self.budget.per_address {
                return Err(Overloaded);
            }
            *held += n;
        }
        match self.budget.bytes.try_acquire_many(permits) {
            Ok(more) => {
                self.charged += n;
                match &mut self.permit {
                    Some(p) => p.merge(more),
                    None => self.permit = Some(more),
                }
                Ok(())
            }
            Err(_) => {
                self.uncharge(n);
                Err(Overloaded)
            }
        }
    }

    fn uncharge(&self, n: usize) {
        let Some(unit) = self.unit else { return };
        let mut accounts = self.budget.accounts();
        if let Some(held) = accounts.get_mut(&unit) {
            *held = held.saturating_sub(n);
            if *held == 0 {
                accounts.remove(&unit);
            }
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.uncharge(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_share_the_budget_and_give_it_back_when_done() {
        let budget = Unverified::new(100, 100);
        let mut a = budget.claim(None);
        a.take(60).unwrap();
        a.take(30).unwrap();
        let mut b = budget.claim(None);
        assert!(matches!(b.take(11), Err(Overloaded)));
        b.take(10).unwrap();
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 10);
        b.take(0).unwrap();
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn one_address_holds_at_most_its_share() {
        // A share of 800 / 8 = 100, at least the largest body (50).
        let budget = Unverified::new(800, 50);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let mut a = budget.claim(ip("192.0.2.1"));
        a.take(60).unwrap();
        // The same address on another connection, and its IPv6 /64.
        let mut b = budget.claim(ip("192.0.2.1"));
        assert!(b.take(41).is_err());
        b.take(40).unwrap();
        let mut v6 = budget.claim(ip("2001:db8::1"));
        v6.take(100).unwrap();
        assert!(budget.claim(ip("2001:db8::2")).take(1).is_err());
        // Others still have room, and a refusal charged nothing.
        budget.claim(ip("192.0.2.2")).take(100).unwrap();
        assert_eq!(budget.in_use(), 200);
        drop((a, b, v6));
        assert_eq!(budget.in_use(), 0);
        assert!(budget.accounts().is_empty());
        // Never less than one body of the largest size.
        let small = Unverified::new(800, 300);
        small.claim(ip("192.0.2.1")).take(300).unwrap();
    }
}
