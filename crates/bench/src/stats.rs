//! Percentiles over measured durations.

use std::time::Duration;

/// Sorted samples.
#[derive(Debug, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn new(mut samples: Vec<Duration>) -> Samples {
        samples.sort_unstable();
        Samples(samples)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile (`p` in 0..=100); zero when empty.
    pub fn pct(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn p50(&self) -> Duration {
        self.pct(50.0)
    }

    pub fn p99(&self) -> Duration {
        self.pct(99.0)
    }

    pub fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        let ms = crate::report::ms_f;
        serde_json::json!({
            "n": self.len(),
            "p50_ms": ms(self.p50()),
            "p90_ms": ms(self.pct(90.0)),
            "p99_ms": ms(self.p99()),
            "max_ms": ms(self.max()),
        })
    }
}
