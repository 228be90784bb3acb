//! CloudWatch Embedded Metric Format: one JSON line on stdout per metric
//! event, turned into metrics by CloudWatch Logs with no API call and no
//! extra latency.

use serde_json::json;

/// Namespace all baton metrics are published under.
pub const NAMESPACE: &str = "Baton";

/// What happened, as a metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    LockAcquired,
    LockHeld,
    Dispatched,
    DispatchFailed,
    Completed,
    /// Seconds from grant to completion report.
    LockDuration,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::LockAcquired => "LockAcquired",
            Metric::LockHeld => "LockHeld",
            Metric::Dispatched => "Dispatched",
            Metric::DispatchFailed => "DispatchFailed",
            Metric::Completed => "Completed",
            Metric::LockDuration => "LockDuration",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::LockDuration => "Seconds",
            _ => "Count",
        }
    }
}

/// The EMF line for one observation of `metric` for `command`.
pub fn line(metric: Metric, command: &str, value: f64, now_millis: u64) -> String {
    json!({
        "_aws": {
            "Timestamp": now_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Command"]],
                "Metrics": [{ "Name": metric.name(), "Unit": metric.unit() }],
            }],
        },
        "Command": command,
        metric.name(): value,
    })
    .to_string()
}

/// Writes one observation to stdout inside Lambda, where CloudWatch Logs
/// picks it up; elsewhere (a `--event` replay) to stderr, so stdout keeps
/// only the batch response.
pub fn emit(metric: Metric, command: &str, value: f64) {
    static IN_LAMBDA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let text = line(metric, command, value, now);
    if *IN_LAMBDA.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()) {
        println!("{text}");
    } else {
        eprintln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_declares_the_metric_it_carries() {
        let v: serde_json::Value =
            serde_json::from_str(&line(Metric::LockDuration, "/deploy", 42.0, 7)).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 7);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Baton");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "LockDuration"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Seconds"
        );
        assert_eq!(v["Command"], "/deploy");
        assert_eq!(v["LockDuration"], 42.0);
    }
}
