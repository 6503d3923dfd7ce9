//! The limits of one agent's functions: `rate_limit` per call and over all
//! calls, and a verifier's `max_failures` per account, with one check of an
//! account at a time. Built with the agent; a reload keeps unchanged limits
//! and their counts.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::failures::AuthFailures;
use super::{Admission, Keyed};
use crate::agent::units::Rate;

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
    use std::time::Duration;

    use super::FunctionLimit;
    use crate::agent::units::Rate;
    use crate::limits::Admission;

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
