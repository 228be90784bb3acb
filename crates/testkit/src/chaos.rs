//! Seeded fault schedules for the fault-injection suites.
//!
//! A schedule decides the fate of each request from the seed and the
//! request's *logical identity* (what it asks for, with lock ids, timestamps
//! and other run-to-run noise masked out, plus how many times the same
//! logical request was seen before). The decisions therefore do not depend on
//! how concurrent callers happen to interleave: the same seed injects the
//! same faults into the same operations.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use crate::proxy::{FaultAction, ProxiedRequest};

/// The environment variable that pins a suite to one seed.
pub const SEED_VAR: &str = "BATON_FAULT_SEED";

/// The seed from `BATON_FAULT_SEED`, if set. Panics (this is test code) when
/// it is not a number, rather than silently running another seed.
pub fn seed_from_env() -> Option<u64> {
    let raw = std::env::var(SEED_VAR).ok()?;
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let parsed = match raw.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => raw.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{SEED_VAR}={raw} is not a number")))
}

/// FNV-1a over `parts`: the same value in every build and on every machine
/// (unlike `std`'s hasher), so a seed reproduces a schedule anywhere.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// `text` with what differs from run to run masked: UUIDs become `<id>` and
/// runs of digits (timestamps, fences, ports) become `#`.
pub fn mask_volatile(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if is_uuid_at(bytes, i) {
            out.push_str("<id>");
            i += 36;
        } else if bytes[i].is_ascii_digit() {
            out.push('#');
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            let ch = text[i..].chars().next().unwrap_or('?');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_uuid_at(bytes: &[u8], at: usize) -> bool {
    let Some(candidate) = bytes.get(at..at + 36) else {
        return false;
    };
    candidate.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    })
}

/// Per-request random draws derived from a seed and the request's identity.
pub struct Schedule {
    seed: u64,
    seen: Mutex<HashMap<String, u64>>,
}

impl Schedule {
    pub fn new(seed: u64) -> Schedule {
        Schedule {
            seed,
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A generator for the next occurrence of the logical request `identity`
    /// (already masked by the caller where needed).
    pub fn rng_for(&self, identity: &str) -> fastrand::Rng {
        let occurrence = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let n = seen.entry(identity.to_owned()).or_insert(0);
            *n += 1;
            *n
        };
        fastrand::Rng::with_seed(stable_hash(&[
            &self.seed.to_le_bytes(),
            identity.as_bytes(),
            &occurrence.to_le_bytes(),
        ]))
    }
}

/// The DynamoDB faults the suites inject, in equal shares of the fault rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DynamoFault {
    /// `InternalServerError`, HTTP 500, nothing written.
    InternalServerError,
    /// `ThrottlingException`, HTTP 400, nothing written.
    Throttling,
    /// `ProvisionedThroughputExceededException`, HTTP 400, nothing written.
    ThroughputExceeded,
    /// Held past the client's attempt timeout, then forwarded: the write may
    /// land after the client gave up on this attempt.
    DelayPastTimeout,
    /// The connection is closed; nothing written.
    Drop,
    /// The write lands, the connection is closed before the answer.
    SuccessThenDrop,
    /// The write lands, the answer is an `InternalServerError` 500.
    SuccessThen500,
}

impl DynamoFault {
    pub const ALL: [DynamoFault; 7] = [
        DynamoFault::InternalServerError,
        DynamoFault::Throttling,
        DynamoFault::ThroughputExceeded,
        DynamoFault::DelayPastTimeout,
        DynamoFault::Drop,
        DynamoFault::SuccessThenDrop,
        DynamoFault::SuccessThen500,
    ];

    /// What the proxy does for this fault; `delay` is how long a delayed
    /// request is held.
    pub fn action(self, delay: Duration) -> FaultAction {
        match self {
            DynamoFault::InternalServerError => FaultAction::dynamodb_error(500, "InternalServerError"),
            DynamoFault::Throttling => FaultAction::dynamodb_error(400, "ThrottlingException"),
            DynamoFault::ThroughputExceeded => {
                FaultAction::dynamodb_error(400, "ProvisionedThroughputExceededException")
            }
            DynamoFault::DelayPastTimeout => FaultAction::Delay(delay),
            DynamoFault::Drop => FaultAction::Drop,
            DynamoFault::SuccessThenDrop => FaultAction::ForwardThenDrop,
            DynamoFault::SuccessThen500 => FaultAction::ForwardThenRespond {
                status: 500,
                body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by baton-testkit after the write"}"#.into(),
            },
        }
    }
}

/// A seeded DynamoDB fault rule for a [`crate::FaultProxy`]: each request
/// suffers one of [`DynamoFault::ALL`] with probability `rate`.
pub struct DynamoChaos {
    schedule: Schedule,
    rate: f64,
    delay: Duration,
    tally: Mutex<BTreeMap<DynamoFault, usize>>,
    requests: Mutex<usize>,
}

impl DynamoChaos {
    /// `delay` should exceed the client's attempt timeout.
    pub fn new(seed: u64, rate: f64, delay: Duration) -> DynamoChaos {
        DynamoChaos {
            schedule: Schedule::new(seed),
            rate,
            delay,
            tally: Mutex::new(BTreeMap::new()),
            requests: Mutex::new(0),
        }
    }

    /// The fault (if any) for `request`, decided by the seed and the
    /// request's masked operation and body.
    pub fn decide(&self, request: &ProxiedRequest) -> Option<DynamoFault> {
        let identity = format!(
            "{} {}",
            request.operation,
            mask_volatile(&String::from_utf8_lossy(&request.body))
        );
        let mut rng = self.schedule.rng_for(&identity);
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        if rng.f64() >= self.rate {
            return None;
        }
        let fault = DynamoFault::ALL[rng.usize(..DynamoFault::ALL.len())];
        *self
            .tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(fault)
            .or_insert(0) += 1;
        Some(fault)
    }

    /// [`DynamoChaos::decide`] as a proxy action.
    pub fn action(&self, request: &ProxiedRequest) -> FaultAction {
        self.decide(request)
            .map_or(FaultAction::Forward, |f| f.action(self.delay))
    }

    /// How often each fault was injected so far.
    pub fn tally(&self) -> BTreeMap<DynamoFault, usize> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests judged so far.
    pub fn requests(&self) -> usize {
        *self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_hides_ids_and_numbers_only() {
        assert_eq!(
            mask_volatile(
                r##"{"lockId":"0b8f6a52-6f0e-4d7e-9a59-2a3c1d4e5f60","fence":"1700000000001","key":"k-2"}"##
            ),
            r##"{"lockId":"<id>","fence":"#","key":"k-#"}"##
        );
        assert_eq!(mask_volatile("héllo"), "héllo");
    }

    #[test]
    fn a_schedule_repeats_per_identity_and_occurrence() {
        let (a, b) = (Schedule::new(7), Schedule::new(7));
        let first: Vec<u64> = (0..3).map(|_| a.rng_for("x").u64(..)).collect();
        let _ = b.rng_for("y");
        let second: Vec<u64> = (0..3).map(|_| b.rng_for("x").u64(..)).collect();
        assert_eq!(first, second, "other identities do not shift the schedule");
        assert_ne!(first[0], first[1], "each occurrence draws anew");
        assert_ne!(Schedule::new(8).rng_for("x").u64(..), first[0]);
    }
}
