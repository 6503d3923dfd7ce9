//! The outbox's worker: delivers each waiting summary with its agent's
//! `summary` handler, a few at once. A 5xx, a 429, a timeout or no
//! connection is tried again with exponential backoff and jitter (or when
//! the receiver's `Retry-After` says); another 4xx is given up at once;
//! past `max_age` a summary is given up as expired. Whatever happens is in
//! the audit log (never the summary's text) and the metrics.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt as _};
use serde_json::{json, Map, Value};

use super::{now_ms, Entry, Listed, Outbox, StoreError};
use crate::audit::Event;
use crate::handlers::{CallInput, Delivery};
use crate::state::AppState;

/// Deliveries in flight at once.
const IN_FLIGHT: usize = 4;
/// The first retry's wait, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often the store is read again (an operator's `retry` or `drop`).
const RESCAN: Duration = Duration::from_secs(2);
/// A `Retry-After` longer than this is not waited for in full.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// An entry and where its delivery stands; its body is read only when it
/// is tried, so the worker holds no copy of the outbox.
struct Slot {
    listed: Listed,
    attempts: u32,
    next_ms: u64,
}

/// Runs until the server stops.
pub async fn run(state: actix_web::web::Data<AppState>, outbox: Arc<Outbox>) {
    let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut flying = FuturesUnordered::new();
    let mut scanned_ms = 0;
    loop {
        let now = now_ms();
        if now.saturating_sub(scanned_ms) >= RESCAN.as_millis() as u64 {
            rescan(&state, &outbox, &mut slots, &busy).await;
            scanned_ms = now;
        }
        let room = IN_FLIGHT.saturating_sub(busy.len());
        let due: Vec<Listed> = slots
            .values()
            .filter(|s| s.next_ms <= now && !busy.contains(&s.listed.id))
            .map(|s| s.listed.clone())
            .take(room)
            .collect();
        for listed in due {
            busy.insert(listed.id.clone());
            flying.push(attempt(&state, &outbox, listed));
        }
        let wait = match busy.len() < IN_FLIGHT {
            true => next_wait(&slots, &busy, now),
            // Full: what is due waits for a delivery to finish.
            false => RESCAN,
        };
        tokio::select! {
            Some((listed, entry, outcome)) = flying.next(), if !flying.is_empty() => {
                busy.remove(&listed.id);
                settle(&state, &outbox, &mut slots, &listed, entry.as_ref(), outcome);
            }
            _ = outbox.arrived.notified() => {
                for listed in outbox.arrivals() {
                    let next_ms = now_ms();
                    slots.entry(listed.id.clone()).or_insert(Slot { listed, attempts: 0, next_ms });
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Lists the store again, off this thread: new entries join, vanished
/// ones leave (unless in flight), and the gauges are set.
async fn rescan(
    state: &AppState,
    outbox: &Arc<Outbox>,
    slots: &mut BTreeMap<String, Slot>,
    busy: &HashSet<String>,
) {
    let lister = outbox.clone();
    let pending = match actix_web::rt::task::spawn_blocking(move || lister.rescan()).await {
        Ok(Ok(pending)) => pending,
        Ok(Err(e)) => return log::error!("outbox: {e}"),
        Err(e) => return log::error!("outbox: {e}"),
    };
    let ids: HashSet<&str> = pending.iter().map(|l| l.id.as_str()).collect();
    slots.retain(|id, _| ids.contains(id.as_str()) || busy.contains(id));
    let now = now_ms();
    let mut oldest = now;
    for listed in pending {
        oldest = oldest.min(Entry::received_ms_of(&listed.id).unwrap_or(now));
        slots.entry(listed.id.clone()).or_insert(Slot {
            listed,
            attempts: 0,
            next_ms: now,
        });
    }
    let metrics = &state.metrics;
    metrics.outbox_depth.set(outbox.usage().0 as i64);
    metrics
        .outbox_oldest_seconds
        .set((now.saturating_sub(oldest) / 1000) as i64);
}

/// How long until the next entry is due (at most a rescan away).
fn next_wait(slots: &BTreeMap<String, Slot>, busy: &HashSet<String>, now: u64) -> Duration {
    let next = slots
        .values()
        .filter(|s| !busy.contains(&s.listed.id))
        .map(|s| s.next_ms.saturating_sub(now))
        .min()
        .unwrap_or(u64::MAX);
    Duration::from_millis(next).min(RESCAN)
}

/// What became of one entry's attempt.
enum Outcome {
    Tried(Delivery),
    /// Older than its agent's `max_age`: not tried.
    Expired,
    /// Its agent delivers no summaries now (a reload removed `summary`).
    NoHandler,
    /// Gone from the store meanwhile (an operator's `drop`), or unreadable.
    Unread,
}

/// One attempt, with the agent as it is now; the entry is read off this
/// thread.
async fn attempt(
    state: &AppState,
    outbox: &Arc<Outbox>,
    listed: Listed,
) -> (Listed, Option<Entry>, Outcome) {
    let (reader, id) = (outbox.clone(), listed.id.clone());
    let entry = match actix_web::rt::task::spawn_blocking(move || reader.load(&id)).await {
        Ok(Ok(entry)) => entry,
        Ok(Err(StoreError::NotFound(_))) => return (listed, None, Outcome::Unread),
        Ok(Err(e)) => {
            log::error!("outbox: {e}");
            return (listed, None, Outcome::Unread);
        }
        Err(e) => {
            log::error!("outbox: {e}");
            return (listed, None, Outcome::Unread);
        }
    };
    let outcome = deliver(state, &entry).await;
    (listed, Some(entry), outcome)
}

/// Delivers `entry` with its agent's `summary` handler.
async fn deliver(state: &AppState, entry: &Entry) -> Outcome {
    let live = state.live();
    let Some(delivery) = live.agent.summary.as_ref() else {
        return Outcome::NoHandler;
    };
    if entry.age_ms(now_ms()) > delivery.max_age.as_millis() as u64 {
        return Outcome::Expired;
    }
    let request: Value = serde_json::from_str(&entry.request).unwrap_or(Value::Null);
    let empty = Map::new();
    let request_map = request.as_object().unwrap_or(&empty);
    let call_id = request_map
        .get("call_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let the_call = Value::Object(crate::call::call_of(request_map, call_id));
    let summary = summary_of(entry, request_map);
    // A program reads what it delivers on stdin: the summary, the call,
    // and the request as the platform sent it.
    let envelope = json!({
        "id": entry.id,
        "agent": entry.agent,
        "received_ms": entry.received_ms,
        "summary": summary,
        "call": the_call,
        "request": request,
    });
    let null = Value::Null;
    let input = CallInput {
        args: &envelope,
        call_id,
        global_data: request_map.get("global_data").unwrap_or(&null),
        meta_data: &null,
        call: Some(&the_call),
        payload: Some(&summary),
    };
    let tried = live
        .runtime
        .deliver(&live.agent, &delivery.function, input, &entry.id)
        .await;
    Outcome::Tried(tried)
}

/// `${summary.id}`, `${summary.text}` (as the platform sent it),
/// `${summary.parsed}` (its JSON, when the post-prompt asked for JSON) and
/// `${summary.call_log}` (with `params.swaig_post_conversation`).
fn summary_of(entry: &Entry, request: &Map<String, Value>) -> Value {
    let data = request.get("post_prompt_data");
    let raw = data.and_then(|d| d.get("raw")).and_then(Value::as_str);
    let parsed = raw
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .or_else(|| data.and_then(|d| d.pointer("/parsed/0")).cloned())
        .unwrap_or(Value::Null);
    let text = raw.map(str::to_owned).unwrap_or_else(|| match &parsed {
        Value::Null => String::new(),
        other => other.to_string(),
    });
    let call_log = request.get("call_log").cloned().unwrap_or(Value::Null);
    json!({ "id": entry.id, "text": text, "parsed": parsed, "call_log": call_log })
}

/// Acts on an attempt's outcome: removed, rescheduled, or set aside.
fn settle(
    state: &AppState,
    outbox: &Outbox,
    slots: &mut BTreeMap<String, Slot>,
    listed: &Listed,
    entry: Option<&Entry>,
    outcome: Outcome,
) {
    let Some(slot) = slots.get_mut(&listed.id) else {
        return;
    };
    slot.attempts += 1;
    let attempts = slot.attempts;
    let event = |name: &'static str, outcome: &'static str| {
        Event::new(name, outcome)
            .field("summary_id", listed.id.clone())
            .field("attempts", attempts)
    };
    let count = |outcome: &str| {
        state
            .metrics
            .summary_deliveries
            .with_label_values(&[outcome])
            .inc()
    };
    let (tried, entry) = match (outcome, entry) {
        (Outcome::Unread, _) | (_, None) => {
            slots.remove(&listed.id);
            return;
        }
        (Outcome::NoHandler, Some(_)) => {
            slot.next_ms = now_ms() + MAX_BACKOFF.as_millis() as u64;
            log::warn!(
                "summary `{}`: the agent has no `summary` to deliver it with; kept",
                listed.id
            );
            return;
        }
        (Outcome::Expired, Some(entry)) => {
            slots.remove(&listed.id);
            give_up(outbox, entry, "expired: older than `summary.max_age`");
            count("expired");
            state.audit_after(|| event("summary_expired", "expired"));
            return;
        }
        (Outcome::Tried(tried), Some(entry)) => (tried, entry),
    };
    match tried {
        Delivery::Delivered => {
            slots.remove(&listed.id);
            if let Err(e) = outbox.delivered(listed) {
                log::error!(
                    "outbox: summary `{}` was delivered but stays in the outbox: {e}",
                    listed.id
                );
            }
            count("delivered");
            let latency = entry.age_ms(now_ms());
            state.audit_after(|| event("summary_delivered", "ok").field("latency_ms", latency));
        }
        Delivery::Retry { reason, after } => {
            // A receiver's `Retry-After` may lengthen the wait, never
            // shorten it: `Retry-After: 0` must not turn into a flood.
            let wait = backoff(attempts).max(after.unwrap_or_default().min(MAX_RETRY_AFTER));
            slot.next_ms = now_ms() + wait.as_millis() as u64;
            log::warn!(
                "summary `{}`: {reason}; trying again in {}s",
                listed.id,
                wait.as_secs()
            );
            count("retry");
            state.audit_after(|| {
                event("summary_retry", "retry")
                    .field("reason", crate::text::printable_cut(&reason, 200))
                    .field("next_in_ms", wait.as_millis() as u64)
            });
        }
        Delivery::Rejected { reason } => {
            slots.remove(&listed.id);
            give_up(outbox, entry, &reason);
            count("rejected");
            state.audit_after(|| {
                event("summary_rejected", "refused")
                    .field("reason", crate::text::printable_cut(&reason, 200))
            });
        }
    }
}

fn give_up(outbox: &Outbox, entry: &Entry, reason: &str) {
    log::error!(
        "summary `{}` given up: {reason}; `swagent outbox retry` sends it again",
        entry.id
    );
    if let Err(e) = outbox.bury(entry, reason) {
        log::error!("outbox: {e}");
    }
}

/// The wait before retry `attempts`: doubling from a second up to five
/// minutes, each a random point in its upper half, so a backend that comes
/// back is not hit by every summary at once.
fn backoff(attempts: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let half = full / 2;
    let mut byte = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte)
        .expect("the system random source works");
    half + half.mul_f64(f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_upper_half_and_stops_at_five_minutes() {
        for (attempts, full) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (40, 300)] {
            let d = backoff(attempts);
            let full = Duration::from_secs(full);
            assert!(d >= full / 2 && d <= full, "{attempts}: {d:?}");
        }
    }
}
