//! Settings from the environment, read once at start-up. A missing or
//! malformed setting fails the start with its name and what it should hold,
//! never a surprise on the first request.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;

/// Where settings are looked up: the process environment, or a fixed map in
/// tests. Blank values count as unset.
#[derive(Debug, Clone)]
pub enum Env {
    /// The process environment.
    Process,
    /// A fixed set of variables.
    Fixed(HashMap<String, String>),
}

impl Env {
    /// The process environment.
    pub fn process() -> Env {
        Env::Process
    }

    /// A fixed environment, for tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env::Fixed(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// The value of `name`, trimmed; `None` when unset or blank.
    pub fn var(&self, name: &str) -> Option<String> {
        let value = match self {
            Env::Process => std::env::var(name).ok(),
            Env::Fixed(map) => map.get(name).cloned(),
        };
        value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A setting that must be present; the error says what it should hold.
    pub fn required(&self, name: &str, expects: &str) -> anyhow::Result<String> {
        self.var(name)
            .with_context(|| format!("{name} is not set: it should hold {expects}"))
    }

    /// A duration such as `30s`, `5m` or `1h 30m`, else `default`.
    pub fn duration(&self, name: &str, default: Duration) -> anyhow::Result<Duration> {
        match self.var(name) {
            None => Ok(default),
            Some(v) => humantime::parse_duration(&v).with_context(|| {
                format!("{name} should be a duration such as 30s or 5m, not {v:?}")
            }),
        }
    }

    /// A number, else `default`.
    pub fn number<T: FromStr>(&self, name: &str, default: T) -> anyhow::Result<T> {
        match self.var(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("{name} should be a whole number, not {v:?}")),
        }
    }

    /// A switch that is on unless set to `false`, `0`, `no` or `off` (any case).
    pub fn switch_on(&self, name: &str) -> bool {
        !matches!(
            self.var(name).map(|v| v.to_ascii_lowercase()).as_deref(),
            Some("false" | "0" | "no" | "off")
        )
    }

    /// An `http(s)` URL, else `default`.
    pub fn url(&self, name: &str, default: &str) -> anyhow::Result<String> {
        let value = self.var(name).unwrap_or_else(|| default.to_owned());
        if value.starts_with("https://") || value.starts_with("http://") {
            Ok(value)
        } else {
            anyhow::bail!("{name} should be an http(s) URL, not {value:?}")
        }
    }
}

impl Default for Env {
    fn default() -> Env {
        Env::process()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        let env = Env::from_pairs(&[("A", "  "), ("B", " x ")]);
        assert_eq!(env.var("A"), None);
        assert_eq!(env.var("B").as_deref(), Some("x"));
    }

    #[test]
    fn a_missing_setting_says_what_it_expects() {
        let err = Env::from_pairs(&[])
            .required("BATON_QUEUE_URL", "the command queue's URL")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "BATON_QUEUE_URL is not set: it should hold the command queue's URL"
        );
    }

    #[test]
    fn malformed_values_are_named_with_what_they_should_be() {
        let env = Env::from_pairs(&[("T", "soon"), ("N", "five"), ("U", "hooks.slack.com")]);
        let e = env.duration("T", Duration::ZERO).unwrap_err().to_string();
        assert!(e.starts_with("T should be a duration"), "{e}");
        let e = env.number::<u32>("N", 5).unwrap_err().to_string();
        assert!(e.starts_with("N should be a whole number"), "{e}");
        let e = env.url("U", "https://x").unwrap_err().to_string();
        assert!(e.starts_with("U should be an http(s) URL"), "{e}");
        assert_eq!(
            env.duration("X", Duration::from_secs(3)).unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(
            Env::from_pairs(&[("T", "5m")])
                .duration("T", Duration::ZERO)
                .unwrap(),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn switches_are_on_unless_plainly_off() {
        for off in ["false", "0", "NO", "Off"] {
            assert!(!Env::from_pairs(&[("S", off)]).switch_on("S"), "{off}");
        }
        for on in ["true", "1", "yes", ""] {
            assert!(Env::from_pairs(&[("S", on)]).switch_on("S"), "{on}");
        }
    }
}
