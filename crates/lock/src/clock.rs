//! Wall-clock helpers. Leases are whole epoch seconds, rounded so that a
//! holder's view of validity is never longer than the store's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, rounded down.
pub fn now_epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Milliseconds since the Unix epoch.
pub fn now_epoch_millis() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// [`now_iso`] for a clock reading in epoch milliseconds, for stores whose
/// clock is not the wall clock.
pub(crate) fn iso_at_millis(millis: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

/// Lease end, in epoch milliseconds, for a lease of `ttl` starting at
/// `now_millis`: what validity is decided by.
pub(crate) fn lease_end_millis(now_millis: u64, ttl: Duration) -> u64 {
    now_millis.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

/// [`lease_end_millis`] rounded up to a whole second: the `expiresAt`
/// attribute people and dashboards read, never shorter than the lease.
pub(crate) fn lease_end(now_millis: u64, ttl: Duration) -> u64 {
    lease_end_millis(now_millis, ttl).div_ceil(1000)
}
