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
//! request held; a signed webhook, a few KiB sent at once, still finds
//! room unless the budget is full at that moment.

use tokio::sync::{Semaphore, SemaphorePermit};

use super::error::ApiError;

/// Bytes that unverified bodies may hold at once, unless
/// [`UNVERIFIED_BODIES_VAR`] says otherwise: thousands of webhook bodies.
pub const DEFAULT_UNVERIFIED_BODIES: usize = 16 * 1024 * 1024;
/// Sets the budget, in bytes; at least `SWML_MAX_REQUEST_SIZE`.
pub const UNVERIFIED_BODIES_VAR: &str = "SWAGENT_UNVERIFIED_BODIES";

/// The shared budget.
pub struct Unverified {
    bytes: Semaphore,
    capacity: usize,
}

impl Unverified {
    pub fn new(capacity: usize) -> Unverified {
        Unverified {
            bytes: Semaphore::new(capacity.min(Semaphore::MAX_PERMITS)),
            capacity,
        }
    }

    /// An empty claim on the budget, for one body.
    pub fn claim(&self) -> Held<'_> {
        Held {
            budget: self,
            permit: None,
        }
    }

    /// Bytes held now.
    pub fn in_use(&self) -> usize {
        self.capacity
            .min(Semaphore::MAX_PERMITS)
            .saturating_sub(self.bytes.available_permits())
    }
}

/// What one body holds of the budget; given back when dropped.
pub struct Held<'a> {
    budget: &'a Unverified,
    permit: Option<SemaphorePermit<'a>>,
}

impl Held<'_> {
    /// Adds `n` more bytes to the claim, or refuses them without waiting:
    /// waiting would let a flood hold what it has for longer.
    pub fn take(&mut self, n: usize) -> Result<(), ApiError> {
        let Ok(n) = u32::try_from(n) else {
            return Err(self.overloaded());
        };
        if n == 0 {
            return Ok(());
        }
        match self.budget.bytes.try_acquire_many(n) {
            Ok(more) => {
                match &mut self.permit {
                    Some(p) => p.merge(more),
                    None => self.permit = Some(more),
                }
                Ok(())
            }
            Err(_) => Err(self.overloaded()),
        }
    }

    fn overloaded(&self) -> ApiError {
        ApiError::Overloaded {
            capacity: self.budget.capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_share_the_budget_and_give_it_back_when_done() {
        let budget = Unverified::new(100);
        let mut a = budget.claim();
        a.take(60).unwrap();
        a.take(30).unwrap();
        let mut b = budget.claim();
        assert!(matches!(
            b.take(11),
            Err(ApiError::Overloaded { capacity: 100 })
        ));
        b.take(10).unwrap();
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 10);
        b.take(0).unwrap();
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }
}
