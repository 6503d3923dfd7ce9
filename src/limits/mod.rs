//! Rate limits: per client address, per failed authentication, per function.
//!
//! Counting is governor's GCRA; this module only chooses keys and quotas and
//! turns governor's answers into an [`Admission`] the server can act on (and
//! the lead can log). It does not know about HTTP.
//!
//! Memory stays bounded when millions of distinct addresses or call ids show
//! up: keys only enter a limiter through a check, and every
//! [`SWEEP_EVERY`] checks the limiter drops, with governor's
//! `retain_recent()` and `shrink_to_fit()`, every key whose state is
//! indistinguishable from a fresh one (nothing used in the last window). So a
//! limiter holds at most the keys active within one window plus
//! `SWEEP_EVERY`. Call ids are hashed to a `u64` first, so a long call id
//! costs no more than a short one. The lock-out list of failed
//! authentication holds at most [`MAX_LOCKOUTS`] addresses: expired entries
//! go when it is full, and if it is still full a new address is not locked
//! out (its failures are still limited by the counter, just without the
//! rest-of-the-window lock-out).

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::agent::units::Rate;

mod failures;
mod functions;

pub use failures::AuthFailures;
pub use functions::{Attempt, Checking, FunctionLimit, FunctionLimits, Lockout};

/// A limiter's quota for `rate`: the whole `count` may come at once; it
/// refills evenly over `per`.
fn quota(rate: Rate) -> Quota {
    Quota::with_period(rate.per / rate.count.get())
        .expect("`Rate::new` refuses a zero period")
        .allow_burst(rate.count)
}

/// Keyed limiters are swept of stale keys once per this many checks.
pub const SWEEP_EVERY: u64 = 1024;

/// At most this many addresses are locked out at once.
pub const MAX_LOCKOUTS: usize = 65_536;

/// What a limiter says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the limit; the caller may try again after this long.
    Limited {
        retry_after: Duration,
    },
}

impl Admission {
    pub fn is_limited(&self) -> bool {
        matches!(self, Admission::Limited { .. })
    }

    /// `Retry-After` in whole seconds, at least 1.
    pub fn retry_after_secs(retry_after: Duration) -> u64 {
        retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// A keyed limiter that sweeps its stale keys (see the module docs).
pub struct Keyed<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    /// A limiter allowing `rate` per key.
    pub fn new(rate: Rate) -> Keyed<K> {
        Keyed::with_clock(rate, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock> Keyed<K, C> {
    /// A limiter on an explicit clock (tests use governor's fake clock).
    pub fn with_clock(rate: Rate, clock: C) -> Keyed<K, C> {
        let quota = quota(rate);
        Keyed {
            limiter: RateLimiter::dashmap_with_clock(quota, clock),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one event for `key`.
    pub fn check(&self, key: &K) -> Admission {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        match self.limiter.check_key(key) {
            Ok(()) => Admission::Allowed,
            Err(not_until) => Admission::Limited {
                retry_after: not_until.wait_time_from(self.limiter.clock().now()),
            },
        }
    }

    /// Drops the keys that are back to a fresh state.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// What every per-client limit counts by: an IPv4 address, or an IPv6 /64.
/// One subscriber commonly holds a whole /64, so counting single IPv6
/// addresses would give a flooder or a guesser 2^64 fresh starts.
pub fn client_unit(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| {
        IpAddr::V4(std::net::Ipv4Addr::from(
            (u32::from(hi) << 16) | u32::from(lo),
        ))
    };
    match s {
        // IPv4-mapped: the IPv4 address.
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => embedded(hi, lo),
        // NAT64 (64:ff9b::/96): one IPv4 host behind the translator.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        // 6to4 (2002:V4ADDR::/48): the whole /48 is that one IPv4 site's.
        [0x2002, hi, lo, ..] => embedded(hi, lo),
        // `::/64` (loopback, IPv4-compatible) and link-local (`fe80::/10`)
        // hold unrelated hosts: each address is its own.
        [0, 0, 0, 0, ..] => ip,
        [first, ..] if first & 0xffc0 == 0xfe80 => ip,
        _ => {
            let mut s = s;
            s[4..].fill(0);
            IpAddr::V6(std::net::Ipv6Addr::from(s))
        }
    }
}

/// Every limiter of a running server.
pub struct Limits {
    /// `SWML_RATE_LIMIT` per client (`None`: off), counted by [`client_unit`].
    pub per_address: Option<Keyed<IpAddr>>,
    /// `SWAGENT_AUTH_FAILURE_LIMIT` per client (`None`: off), counted by
    /// [`client_unit`].
    pub auth_failures: Option<AuthFailures>,
    /// The same limit per presented SignalWire signature, for signed
    /// webhooks, which the per-address lock-out does not hold back: a
    /// captured signed request, replayed with guessed credentials, gets no
    /// more guesses than an address does.
    pub signed_failures: Option<AuthFailures<Vec<u8>>>,
}

impl Limits {
    /// Limiters for these settings; `window` is the interval of the
    /// per-address and failure limits (a minute).
    pub fn new(rate_limit: u32, auth_failure_limit: u32, window: Duration) -> Limits {
        Limits {
            per_address: Rate::new(rate_limit, window).map(Keyed::new),
            auth_failures: AuthFailures::new(auth_failure_limit, window),
            signed_failures: AuthFailures::new(auth_failure_limit, window),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::{Admission, Keyed, SWEEP_EVERY};
    use crate::agent::units::Rate;

    #[test]
    fn a_burst_of_the_quota_then_limited_then_recovered() {
        let clock = FakeRelativeClock::default();
        let k: Keyed<u32, _> = Keyed::with_clock(
            Rate::new(3, Duration::from_secs(60)).unwrap(),
            clock.clone(),
        );
        for _ in 0..3 {
            assert_eq!(k.check(&1), Admission::Allowed);
        }
        assert_eq!(
            k.check(&1),
            Admission::Limited {
                retry_after: Duration::from_secs(20)
            }
        );
        // Another key is not affected.
        assert_eq!(k.check(&2), Admission::Allowed);
        clock.advance(Duration::from_secs(20));
        assert_eq!(k.check(&1), Admission::Allowed);
        assert_eq!(Admission::retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(
            Admission::retry_after_secs(Duration::from_millis(20_001)),
            21
        );
    }

    #[test]
    fn stale_keys_are_evicted() {
        let clock = FakeRelativeClock::default();
        let k: Keyed<u64, _> = Keyed::with_clock(
            Rate::new(5, Duration::from_secs(60)).unwrap(),
            clock.clone(),
        );
        for key in 0..5000 {
            k.check(&key);
        }
        // The periodic sweeps ran, but every key was still in its window.
        assert_eq!(k.len(), 5000);
        // governor keeps a key until its state is a period past fresh (12 s each).
        clock.advance(Duration::from_secs(23));
        k.sweep();
        assert_eq!(k.len(), 5000);
        clock.advance(Duration::from_secs(2));
        k.sweep();
        assert_eq!(k.len(), 0);
        // Sweeps happen on their own as checks go by: distinct keys that go
        // stale never pile up beyond one sweep interval.
        for key in 0..(4 * SWEEP_EVERY) {
            clock.advance(Duration::from_secs(25));
            k.check(&key);
        }
        assert!(k.len() <= SWEEP_EVERY as usize, "{} keys held", k.len());
    }
}
