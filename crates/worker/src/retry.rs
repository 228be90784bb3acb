//! Retrying HTTP calls to Slack and GitHub inside the time the function has
//! left: backoff with jitter, `Retry-After` honoured, never past the deadline.

use std::time::Duration;

use tokio::time::Instant;

/// How one attempt went, as far as retrying is concerned.
pub(crate) enum Attempt<T, E> {
    Done(T),
    /// Not worth repeating (a 4xx, a refusal).
    Permanent(E),
    /// Worth repeating after `after` (from `Retry-After`) or the backoff.
    Transient {
        error: E,
        after: Option<Duration>,
    },
}

/// Runs `attempt` until it is done, fails permanently, or the next try would
/// start after `deadline`. Returns the last error on giving up.
pub(crate) async fn with_retries<T, E, F, Fut>(deadline: Instant, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt<T, E>>,
{
    let mut backoff = baton_lock::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        match attempt().await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Permanent(error) => return Err(error),
            Attempt::Transient { error, after } => {
                let delay = after.unwrap_or_else(|| backoff.next_delay());
                if Instant::now() + delay >= deadline {
                    return Err(error);
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// `Retry-After` in seconds, as Slack and GitHub send it.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
