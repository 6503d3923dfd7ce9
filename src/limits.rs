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

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::agent::units::Rate;

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

/// A function's limits: per call id and over all calls.
pub struct FunctionLimit {
    /// The rates it was built for, to tell whether a reload changed them.
    rates: (Option<Rate>, Option<Rate>),
    per_call: Option<Keyed<u64>>,
    global: Option<Keyed<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl FunctionLimit {
    /// Limiters for the rates an agent file set.
    pub fn new(per_call: Option<Rate>, global: Option<Rate>) -> FunctionLimit {
        FunctionLimit {
            rates: (per_call, global),
            per_call: per_call.map(Keyed::new),
            global: global.map(Keyed::new),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Counts one run of the function in `call_id`.
    pub fn check(&self, call_id: &str) -> Admission {
        if let Some(per_call) = &self.per_call {
            let key = self.hasher.hash_one(call_id);
            if let limited @ Admission::Limited { .. } = per_call.check(&key) {
                return limited;
            }
        }
        match &self.global {
            Some(global) => global.check(&()),
            None => Admission::Allowed,
        }
    }
}

/// A verifier's `max_failures`: failed checks per bound value (an account,
/// hashed), and the values being checked right now.
pub struct Lockout {
    rate: Rate,
    failures: AuthFailures<u64>,
    checking: Mutex<std::collections::HashSet<u64>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Lockout {
    fn new(rate: Rate) -> Lockout {
        Lockout {
            rate,
            failures: AuthFailures::at_most(rate),
            checking: Mutex::default(),
            hasher: std::collections::hash_map::RandomState::new(),
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

/// The `rate_limit`s and `max_failures` of one agent's functions, by name.
/// Built with the agent, so a reload applies changed limits; an unchanged
/// limit keeps its counts.
#[derive(Default)]
pub struct FunctionLimits {
    functions: HashMap<String, Arc<FunctionLimit>>,
    lockouts: HashMap<String, Arc<Lockout>>,
}

impl FunctionLimits {
    /// The limits of `agent`. On a reload, a function whose rates did not
    /// change keeps its limiter from `previous`, counts included: an operator's
    /// SIGHUP (for a prompt fix, say) must not hand every call a fresh budget
    /// of, for example, transfers, nor unlock a locked account. A changed or
    /// new limit starts afresh; `rate_limit` and `max_failures` are judged
    /// apart.
    pub fn carried(
        agent: &crate::agent::Agent,
        previous: Option<&FunctionLimits>,
    ) -> FunctionLimits {
        let functions = agent
            .functions
            .values()
            .filter(|f| f.rate_limit.per_call.is_some() || f.rate_limit.global.is_some())
            .map(|f| {
                let rates = (f.rate_limit.per_call, f.rate_limit.global);
                let limit = match previous.and_then(|p| p.functions.get(&f.name)) {
                    Some(kept) if kept.rates == rates => Arc::clone(kept),
                    _ => Arc::new(FunctionLimit::new(rates.0, rates.1)),
                };
                (f.name.clone(), limit)
            })
            .collect();
        let lockouts = agent
            .functions
            .values()
            .filter_map(|f| {
                let rate = f.max_failures?;
                let lockout = match previous.and_then(|p| p.lockouts.get(&f.name)) {
                    Some(kept) if kept.rate == rate => Arc::clone(kept),
                    _ => Arc::new(Lockout::new(rate)),
                };
                Some((f.name.clone(), lockout))
            })
            .collect();
        FunctionLimits {
            functions,
            lockouts,
        }
    }

    /// Admits one run of `function` in `call_id`.
    pub fn check(&self, function: &str, call_id: &str) -> Admission {
        self.functions
            .get(function)
            .map_or(Admission::Allowed, |f| f.check(call_id))
    }

    /// Admits one check by verifier `function` of `identity` (the canonical
    /// bound values): refused while they are locked out, and while another
    /// check of them is running, since checks in flight together would all
    /// pass the lock before any failure was counted.
    pub fn verification_attempt(&self, function: &str, identity: &str) -> Attempt {
        let Some(lockout) = self.lockouts.get(function) else {
            return Attempt::Open(None);
        };
        let key = lockout.hasher.hash_one(identity);
        // The lock is looked at while holding the set of running checks: a
        // check that ends (and counts its failure) before this one starts
        // is then always seen.
        let mut running = lockout.checking.lock().unwrap_or_else(|e| e.into_inner());
        if running.contains(&key) {
            return Attempt::Running;
        }
        if let Admission::Limited { retry_after } = lockout.failures.locked(key) {
            return Attempt::Locked { retry_after };
        }
        running.insert(key);
        Attempt::Open(Some(Checking {
            lockout: Arc::clone(lockout),
            key,
        }))
    }
}

/// What [`FunctionLimits::verification_attempt`] decided.
pub enum Attempt {
    /// Go ahead; report a failure through the [`Checking`] (`None`: the
    /// function has no lock-out).
    Open(Option<Checking>),
    Locked {
        retry_after: Duration,
    },
    /// A check of the same values is running.
    Running,
}

/// One verification in flight; dropping it lets the next check of the same
/// values in.
pub struct Checking {
    lockout: Arc<Lockout>,
    key: u64,
}

impl Checking {
    /// Counts this check as failed; `Limited` when that locked the values out.
    pub fn failed(&self) -> Admission {
        self.lockout.failures.record(self.key)
    }
}

impl Drop for Checking {
    fn drop(&mut self) {
        self.lockout
            .checking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use governor::clock::FakeRelativeClock;

    use super::{Admission, AuthFailures, FunctionLimit, Keyed, SWEEP_EVERY};
    use crate::agent::units::Rate;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

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
        let unit = |s: &str| super::client_unit(v6(s));
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            let _ = f.record(unit(host));
        }
        assert!(matches!(
            f.locked(unit("2001:db8:1:2:abcd::1")),
            Admission::Limited { .. }
        ));
        assert_eq!(f.locked(unit("2001:db8:1:3::1")), Admission::Allowed);
        // An IPv4-mapped address is the IPv4 address it maps.
        assert_eq!(super::client_unit(v6("::ffff:192.0.2.7")), v6("192.0.2.7"));
        assert_eq!(super::client_unit(v6("192.0.2.7")), v6("192.0.2.7"));
        // NAT64 and 6to4 carry an IPv4 host or site; `::/64` and link-local
        // addresses are not grouped (an IPv4-compatible `::a.b.c.d` must not
        // lock out `::1`).
        assert_eq!(super::client_unit(v6("64:ff9b::c000:207")), v6("192.0.2.7"));
        assert_eq!(
            super::client_unit(v6("2002:c000:207:1::5")),
            v6("192.0.2.7")
        );
        assert_eq!(
            super::client_unit(v6("2002:c000:207:2::9")),
            v6("192.0.2.7")
        );
        assert_eq!(super::client_unit(v6("::10.9.9.9")), v6("::10.9.9.9"));
        assert_eq!(super::client_unit(v6("::1")), v6("::1"));
        assert_eq!(super::client_unit(v6("fe80::1")), v6("fe80::1"));
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

    #[test]
    fn function_limits_per_call_and_global() {
        let min = Duration::from_secs(60);
        let f = FunctionLimit::new(Rate::new(2, min), Rate::new(3, min));
        assert_eq!(f.check("a"), Admission::Allowed);
        assert_eq!(f.check("a"), Admission::Allowed);
        assert!(matches!(f.check("a"), Admission::Limited { .. }));
        assert_eq!(f.check("b"), Admission::Allowed);
        // Global: the 3 allowed runs are used up.
        assert!(matches!(f.check("c"), Admission::Limited { .. }));
        let open = FunctionLimit::new(None, None);
        for _ in 0..100 {
            assert_eq!(open.check("a"), Admission::Allowed);
        }
    }
}
