//! Failed authentication per client: the failure after `limit` within a
//! window locks the client out for the rest of it, whatever it sends, so a
//! right guess cannot be told from a wrong one while locked out. The list of
//! lock-outs is bounded ([`MAX_LOCKOUTS`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Admission, Keyed, MAX_LOCKOUTS};
use crate::agent::units::Rate;

/// Failed authentication (Basic Auth, function token, request signature) per
/// client address: the failure after `limit` within a window locks the
/// address out, and every request from it is refused until the window has
/// passed, whatever it carries, so a right guess cannot be told from a wrong
/// one while locked out. [`AuthFailures::at_most`] locks at the `limit`th
/// failure instead, for secrets that are guessed one try at a time (PINs).
pub struct AuthFailures<K: Hash + Eq + Clone = IpAddr> {
    /// Failures that pass without locking (`None`: none does).
    counter: Option<Keyed<K>>,
    window: Duration,
    locks: Mutex<Locks<K>>,
    /// Whether `locks` holds anything, kept under its lock. Every request
    /// asks, nearly always when nobody is locked out; reading a flag that
    /// rarely changes keeps the workers off the lock, whose cache line they
    /// would otherwise pass back and forth on each request.
    any: AtomicBool,
    /// With [`MAX_LOCKOUTS`] keys locked, lock every key rather than none.
    fail_closed: bool,
}

struct Locks<K> {
    by_key: HashMap<K, Instant>,
    /// Every key, until then: the table was full (`fail_closed` only).
    all_until: Option<Instant>,
}

impl<K: Hash + Eq + Clone> AuthFailures<K> {
    /// `limit` failures per `window`; `None` when `limit` is 0 (off). With
    /// [`MAX_LOCKOUTS`] addresses locked out, a new one is not, though its
    /// failures are still counted: locking out every address would let one
    /// attacker shut out every client.
    pub fn new(limit: u32, window: Duration) -> Option<AuthFailures<K>> {
        let rate = Rate::new(limit, window)?;
        Some(AuthFailures::counting(
            Some(Keyed::new(rate)),
            window,
            false,
        ))
    }

    /// At most `rate.count` failures per `rate.per`: the last of them locks
    /// the key out for `rate.per`. With [`MAX_LOCKOUTS`] keys locked out,
    /// every key is, until the table has room: nothing else would hold the
    /// guesses back.
    pub fn at_most(rate: Rate) -> AuthFailures<K> {
        let passing = Rate::new(rate.count.get() - 1, rate.per).map(Keyed::new);
        AuthFailures::counting(passing, rate.per, true)
    }

    fn counting(counter: Option<Keyed<K>>, window: Duration, fail_closed: bool) -> AuthFailures<K> {
        AuthFailures {
            counter,
            window,
            locks: Mutex::new(Locks {
                by_key: HashMap::new(),
                all_until: None,
            }),
            any: AtomicBool::new(false),
            fail_closed,
        }
    }

    /// Whether `key` is locked out now.
    pub fn locked(&self, key: K) -> Admission {
        // A lock-out being recorded right now may be missed: the same as
        // this request arriving a moment earlier.
        if !self.any.load(Ordering::Acquire) {
            return Admission::Allowed;
        }
        self.locked_at(key, Instant::now())
    }

    fn locked_at(&self, key: K, now: Instant) -> Admission {
        let mut locks = self.locks.lock().expect("no panic holds this lock");
        // Few entries: sweep the expired ones, so that the flag falls back to
        // false once an attack is over. Many: only the asker's, as a sweep
        // per request would cost most when the server is under attack.
        if locks.by_key.len() <= 16 {
            locks.by_key.retain(|_, until| *until > now);
        }
        if locks.all_until.is_some_and(|until| until <= now) {
            locks.all_until = None;
        }
        let until = match (locks.by_key.get(&key), locks.all_until) {
            (Some(a), Some(b)) => Some((*a).max(b)),
            (one, all) => one.copied().or(all),
        };
        let verdict = match until {
            Some(until) if until > now => Admission::Limited {
                retry_after: until - now,
            },
            Some(_) => {
                locks.by_key.remove(&key);
                Admission::Allowed
            }
            None => Admission::Allowed,
        };
        self.any.store(
            !locks.by_key.is_empty() || locks.all_until.is_some(),
            Ordering::Release,
        );
        verdict
    }

    /// Counts a failure from `ip`; `Limited` when it is one too many, which
    /// also locks the address out for a whole window.
    pub fn record(&self, key: K) -> Admission {
        self.record_at(key, Instant::now())
    }

    fn record_at(&self, key: K, now: Instant) -> Admission {
        if let Some(counter) = &self.counter {
            if counter.check(&key) == Admission::Allowed {
                return Admission::Allowed;
            }
        }
        let until = now.checked_add(self.window).unwrap_or(now);
        let mut locks = self.locks.lock().expect("no panic holds this lock");
        if locks.by_key.len() >= MAX_LOCKOUTS {
            locks.by_key.retain(|_, until| *until > now);
        }
        if locks.by_key.len() < MAX_LOCKOUTS || locks.by_key.contains_key(&key) {
            locks.by_key.insert(key, until);
        } else if self.fail_closed {
            locks.all_until = Some(until);
        }
        self.any.store(true, Ordering::Release);
        Admission::Limited {
            retry_after: self.window,
        }
    }

    /// How many keys are locked out (expired entries included until swept).
    pub fn lockouts(&self) -> usize {
        self.locks
            .lock()
            .expect("no panic holds this lock")
            .by_key
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::AuthFailures;
    use crate::agent::units::Rate;
    use crate::limits::Admission;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn failures_lock_an_address_out_for_a_window() {
        let f = AuthFailures::new(2, Duration::from_secs(60)).unwrap();
        let t0 = Instant::now();
        assert_eq!(f.locked_at(ip(1), t0), Admission::Allowed);
        assert_eq!(f.record_at(ip(1), t0), Admission::Allowed);
        assert_eq!(f.record_at(ip(1), t0), Admission::Allowed);
        assert_eq!(
            f.record_at(ip(1), t0),
            Admission::Limited {
                retry_after: Duration::from_secs(60)
            }
        );
        assert_eq!(
            f.locked_at(ip(1), t0 + Duration::from_secs(59)),
            Admission::Limited {
                retry_after: Duration::from_secs(1)
            }
        );
        assert_eq!(f.locked_at(ip(2), t0), Admission::Allowed);
        assert_eq!(
            f.locked_at(ip(1), t0 + Duration::from_secs(60)),
            Admission::Allowed
        );
        // The expired lock-out was removed when looked at.
        assert_eq!(f.lockouts(), 0);
        assert!(AuthFailures::<IpAddr>::new(0, Duration::from_secs(60)).is_none());
    }

    /// `at_most(3/min)`: the third failure locks, not the fourth; a limit of
    /// one locks at the first.
    #[test]
    fn at_most_locks_at_the_last_allowed_failure() {
        let min = Duration::from_secs(60);
        let f = AuthFailures::<u64>::at_most(Rate::new(3, min).unwrap());
        let t0 = Instant::now();
        assert_eq!(f.record_at(7, t0), Admission::Allowed);
        assert_eq!(f.record_at(7, t0), Admission::Allowed);
        assert_eq!(f.locked_at(7, t0), Admission::Allowed);
        assert_eq!(f.record_at(7, t0), Admission::Limited { retry_after: min });
        assert!(f.locked_at(7, t0 + Duration::from_secs(30)).is_limited());
        assert_eq!(f.locked_at(8, t0), Admission::Allowed);
        let once = AuthFailures::<u64>::at_most(Rate::new(1, min).unwrap());
        assert!(once.record_at(7, t0).is_limited());
        assert!(once.locked_at(7, t0).is_limited());
        assert_eq!(once.locked_at(7, t0 + min), Admission::Allowed);
    }

    /// A guesser rotating through one IPv6 /64 is one guesser.
    #[test]
    fn an_ipv6_64_is_locked_out_as_one() {
        let f = AuthFailures::new(2, Duration::from_secs(60)).unwrap();
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let unit = |s: &str| crate::limits::client_unit(v6(s));
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            let _ = f.record(unit(host));
        }
        assert!(matches!(
            f.locked(unit("2001:db8:1:2:abcd::1")),
            Admission::Limited { .. }
        ));
        assert_eq!(f.locked(unit("2001:db8:1:3::1")), Admission::Allowed);
        // An IPv4-mapped address is the IPv4 address it maps.
        assert_eq!(
            crate::limits::client_unit(v6("::ffff:192.0.2.7")),
            v6("192.0.2.7")
        );
        assert_eq!(crate::limits::client_unit(v6("192.0.2.7")), v6("192.0.2.7"));
        // NAT64 and 6to4 carry an IPv4 host or site; `::/64` and link-local
        // addresses are not grouped (an IPv4-compatible `::a.b.c.d` must not
        // lock out `::1`).
        assert_eq!(
            crate::limits::client_unit(v6("64:ff9b::c000:207")),
            v6("192.0.2.7")
        );
        assert_eq!(
            crate::limits::client_unit(v6("2002:c000:207:1::5")),
            v6("192.0.2.7")
        );
        assert_eq!(
            crate::limits::client_unit(v6("2002:c000:207:2::9")),
            v6("192.0.2.7")
        );
        assert_eq!(
            crate::limits::client_unit(v6("::10.9.9.9")),
            v6("::10.9.9.9")
        );
        assert_eq!(crate::limits::client_unit(v6("::1")), v6("::1"));
        assert_eq!(crate::limits::client_unit(v6("fe80::1")), v6("fe80::1"));
    }

    /// `locked` skips the lock only while nobody is locked out: a lock-out
    /// sets the flag at once, and a look from any address after it expired
    /// clears it.
    #[test]
    fn the_lock_free_check_sees_every_lockout() {
        let f = AuthFailures::new(1, Duration::from_secs(60)).unwrap();
        assert!(!f.any.load(Ordering::Acquire));
        assert_eq!(f.locked(ip(1)), Admission::Allowed);
        f.record(ip(1));
        assert!(matches!(f.record(ip(1)), Admission::Limited { .. }));
        assert!(f.any.load(Ordering::Acquire));
        assert!(matches!(f.locked(ip(1)), Admission::Limited { .. }));
        assert_eq!(f.locked(ip(2)), Admission::Allowed);
        assert!(f.any.load(Ordering::Acquire));
        let later = Instant::now() + Duration::from_secs(61);
        assert_eq!(f.locked_at(ip(2), later), Admission::Allowed);
        assert!(!f.any.load(Ordering::Acquire));
        assert_eq!(f.lockouts(), 0);
    }

    #[test]
    fn lockouts_stay_bounded() {
        let f = AuthFailures::new(1, Duration::from_secs(60)).unwrap();
        let t0 = Instant::now();
        let n = super::MAX_LOCKOUTS as u32 + 10;
        for i in 0..n {
            f.record_at(ip(i), t0);
            f.record_at(ip(i), t0);
        }
        assert_eq!(f.lockouts(), super::MAX_LOCKOUTS);
        // Once they expire, a new lock-out makes room by dropping them.
        let later = t0 + Duration::from_secs(61);
        f.record_at(ip(n + 1), later);
        f.record_at(ip(n + 1), later);
        assert_eq!(f.lockouts(), 1);
        // Addresses fail open when the table is full (one attacker must not
        // lock out every client)...
        assert_eq!(f.locked_at(ip(n + 2), later), Admission::Allowed);
    }

    /// ...PIN lock-outs fail closed: a full table locks every account until
    /// it has room, since nothing else would stop the guesses.
    #[test]
    fn a_full_pin_lockout_table_locks_every_key() {
        let min = Duration::from_secs(60);
        let f = AuthFailures::<u64>::at_most(Rate::new(1, min).unwrap());
        let t0 = Instant::now();
        for key in 0..super::MAX_LOCKOUTS as u64 {
            assert!(f.record_at(key, t0).is_limited());
        }
        let fresh = super::MAX_LOCKOUTS as u64 + 1;
        assert_eq!(f.locked_at(fresh, t0), Admission::Allowed);
        assert!(f.record_at(fresh, t0).is_limited());
        assert_eq!(f.lockouts(), super::MAX_LOCKOUTS);
        let half = t0 + Duration::from_secs(30);
        assert_eq!(
            f.locked_at(fresh + 1, half),
            Admission::Limited {
                retry_after: Duration::from_secs(30)
            }
        );
        assert_eq!(f.locked_at(fresh + 1, t0 + min), Admission::Allowed);
    }
}
