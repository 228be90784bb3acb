//! Change freezes: windows in which a command may not run in some
//! environments. A scheduled freeze is in the config (a 5-field cron start,
//! a duration, an IANA time zone, the environments, a reason); an admin's
//! freeze is a record in the lock table (`/deploy freeze prod 2h "reason"`),
//! read by the worker. Both end up as a [`Frozen`]: what the user is told.
//!
//! ```toml
//! [[commands."/deploy".freezes]]
//! cron = "0 17 * * 5"          # Fridays 17:00 …
//! duration = "63h"             # … to Monday 08:00
//! timezone = "Europe/Berlin"
//! environments = ["prod"]
//! reason = "weekend"
//! ```
//!
//! Nothing here reads the clock: callers pass `now` (epoch milliseconds).

use std::str::FromStr;
use std::time::Duration;

use chrono::DateTime;
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::Deserialize;

use crate::config::ConfigError;

/// Shortest freeze, scheduled or typed: shorter ones end before anyone
/// notices them.
pub const MIN_FREEZE: Duration = Duration::from_secs(60);

/// Longest freeze, scheduled or typed (the lock table keeps none longer).
pub const MAX_FREEZE: Duration = Duration::from_secs(31 * 24 * 3600);

/// How many back-to-back scheduled windows are joined into one "until":
/// a schedule whose windows overlap for ever (`* * * * *` for an hour)
/// would otherwise never say when it ends.
const CHAIN_LIMIT: usize = 64;

/// A freeze from the config, checked: it starts at every time `cron`
/// matches in `timezone` and lasts `duration`.
#[derive(Debug, Clone)]
pub struct ScheduledFreeze {
    /// The cron expression as written (5 fields).
    pub cron_text: String,
    cron: Cron,
    /// How long each window lasts.
    pub duration: Duration,
    /// Where the cron's hours are read.
    pub timezone: Tz,
    /// The environments it freezes.
    pub environments: Vec<String>,
    /// Why, shown to everyone it refuses.
    pub reason: String,
}

/// Two schedules are the same when they are written the same: a parsed
/// [`Cron`] has no meaningful equality of its own beyond its text.
impl PartialEq for ScheduledFreeze {
    fn eq(&self, other: &Self) -> bool {
        self.cron_text == other.cron_text
            && self.duration == other.duration
            && self.timezone == other.timezone
            && self.environments == other.environments
            && self.reason == other.reason
    }
}

impl Eq for ScheduledFreeze {}

/// Who or what froze an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrozenBy {
    /// A scheduled freeze from the config.
    Schedule {
        /// Its cron expression.
        cron: String,
        /// Its time zone's IANA name.
        timezone: String,
    },
    /// An admin's `freeze` command.
    Admin {
        /// Their Slack user id.
        user: String,
    },
}

/// An environment is frozen: until when, why, by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen {
    /// The frozen environment.
    pub environment: String,
    /// When the freeze ends, epoch milliseconds.
    pub until_ms: u64,
    /// Why, as configured or typed.
    pub reason: String,
    /// Who or what froze it.
    pub by: FrozenBy,
}

impl ScheduledFreeze {
    /// The end of the window in force at `now_ms`, if one is: the latest
    /// start at or before now whose window has not ended, joined with the
    /// windows that start before it ends.
    pub fn window_end_at(&self, now_ms: u64) -> Option<u64> {
        let duration = i64::try_from(self.duration.as_millis()).ok()?;
        let now = i64::try_from(now_ms).ok()?;
        // Windows are [start, start + duration): the one in force started
        // after now - duration, and no later than now.
        let after = DateTime::from_timestamp_millis(now - duration)?.with_timezone(&self.timezone);
        let start = self.cron.find_next_occurrence(&after, false).ok()?;
        if start.timestamp_millis() > now {
            return None;
        }
        let mut until = start.timestamp_millis() + duration;
        let mut at = start;
        for _ in 0..CHAIN_LIMIT {
            match self.cron.find_next_occurrence(&at, false) {
                Ok(next) if next.timestamp_millis() <= until => {
                    until = until.max(next.timestamp_millis() + duration);
                    at = next;
                }
                _ => break,
            }
        }
        u64::try_from(until).ok()
    }

    /// Whether it freezes `environment`.
    pub fn covers(&self, environment: &str) -> bool {
        self.environments.iter().any(|e| e == environment)
    }

    /// The freeze in force on `environment` at `now_ms`, if this is one.
    pub fn frozen_at(&self, environment: &str, now_ms: u64) -> Option<Frozen> {
        if !self.covers(environment) {
            return None;
        }
        let until_ms = self.window_end_at(now_ms)?;
        Some(Frozen {
            environment: environment.to_owned(),
            until_ms,
            reason: self.reason.clone(),
            by: FrozenBy::Schedule {
                cron: self.cron_text.clone(),
                timezone: self.timezone.name().to_owned(),
            },
        })
    }
}

/// Of several freezes in force, the one that ends last: it is the one
/// that decides when the environment thaws.
pub fn latest(freezes: impl IntoIterator<Item = Frozen>) -> Option<Frozen> {
    freezes.into_iter().max_by_key(|f| f.until_ms)
}

/// A duration a freeze may last, from what a user or the config wrote:
/// `2h`, `90m`, `1d 12h`; between [`MIN_FREEZE`] and [`MAX_FREEZE`].
pub fn parse_freeze_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim())
        .ok()
        .filter(|d| (MIN_FREEZE..=MAX_FREEZE).contains(d))
}

/// A `[[commands."/x".freezes]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFreeze {
    cron: String,
    duration: String,
    #[serde(default = "utc")]
    timezone: String,
    environments: Vec<String>,
    reason: String,
}

fn utc() -> String {
    "UTC".into()
}

impl RawFreeze {
    /// Checks one freeze at `path` (`commands."/deploy".freezes[0]`)
    /// against the command's `environments`, naming the field at fault.
    pub(crate) fn validate(
        self,
        path: &str,
        environments: &[String],
    ) -> Result<ScheduledFreeze, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: format!("{path}.{field}"),
            message,
        };
        let cron_text = self.cron.trim().to_owned();
        let fields = cron_text.split_whitespace().count();
        if fields != 5 {
            return Err(invalid(
                "cron",
                format!(
                    "{:?} has {fields} fields; write 5 (minute hour day-of-month month day-of-week), e.g. \"0 17 * * 5\"",
                    self.cron
                ),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&cron_text)
            .map_err(|e| {
                invalid(
                    "cron",
                    format!("{:?} is not a cron expression: {e}", self.cron),
                )
            })?;
        let duration = parse_freeze_duration(&self.duration).ok_or_else(|| {
            invalid(
                "duration",
                format!(
                    "{:?} is not a duration between 1m and 31d, e.g. \"2h\" or \"2d 12h\"",
                    self.duration
                ),
            )
        })?;
        let timezone = Tz::from_str(self.timezone.trim()).map_err(|_| {
            invalid(
                "timezone",
                format!(
                    "{:?} is not an IANA time zone, e.g. \"UTC\" or \"Europe/Berlin\"",
                    self.timezone
                ),
            )
        })?;
        if self.environments.is_empty() {
            return Err(invalid(
                "environments",
                "a freeze must name at least one environment".into(),
            ));
        }
        let mut frozen = Vec::new();
        for env in &self.environments {
            let env = env.trim().to_lowercase();
            if !environments.contains(&env) {
                return Err(invalid(
                    "environments",
                    format!(
                        "environment {env:?} is not one of the command's environments: {}",
                        environments.join(", ")
                    ),
                ));
            }
            frozen.push(env);
        }
        if self.reason.trim().is_empty() {
            return Err(invalid(
                "reason",
                "a freeze must say why; it is shown to everyone it refuses".into(),
            ));
        }
        Ok(ScheduledFreeze {
            cron_text,
            cron,
            duration,
            timezone,
            environments: frozen,
            reason: self.reason.trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, duration: &str, timezone: &str) -> ScheduledFreeze {
        RawFreeze {
            cron: cron.into(),
            duration: duration.into(),
            timezone: timezone.into(),
            environments: vec!["prod".into()],
            reason: "release week".into(),
        }
        .validate("f", &["dev".into(), "prod".into()])
        .unwrap()
    }

    /// Epoch ms of a UTC wall-clock time.
    fn at(text: &str) -> u64 {
        let t = DateTime::parse_from_rfc3339(text).unwrap();
        u64::try_from(t.timestamp_millis()).unwrap()
    }

    #[test]
    fn a_window_runs_from_each_start_for_its_duration() {
        // Fridays 17:00 UTC for 2 hours. 2026-12-04 is a Friday.
        let f = schedule("0 17 * * 5", "2h", "UTC");
        assert_eq!(f.window_end_at(at("2026-12-04T16:59:59Z")), None);
        let end = Some(at("2026-12-04T19:00:00Z"));
        assert_eq!(f.window_end_at(at("2026-12-04T17:00:00Z")), end);
        assert_eq!(f.window_end_at(at("2026-12-04T18:59:59.999Z")), end);
        assert_eq!(f.window_end_at(at("2026-12-04T19:00:00Z")), None);
        assert_eq!(f.window_end_at(at("2026-12-05T18:00:00Z")), None);
        let frozen = f.frozen_at("prod", at("2026-12-04T18:00:00Z")).unwrap();
        assert_eq!(frozen.until_ms, at("2026-12-04T19:00:00Z"));
        assert_eq!(frozen.reason, "release week");
        assert_eq!(f.frozen_at("dev", at("2026-12-04T18:00:00Z")), None);
    }

    #[test]
    fn hours_are_read_in_the_time_zone() {
        // 17:00 in Berlin is 16:00 UTC in winter.
        let f = schedule("0 17 * * 5", "1h", "Europe/Berlin");
        assert_eq!(f.window_end_at(at("2026-12-04T15:59:00Z")), None);
        assert_eq!(
            f.window_end_at(at("2026-12-04T16:30:00Z")),
            Some(at("2026-12-04T17:00:00Z"))
        );
        assert_eq!(f.window_end_at(at("2026-12-04T17:30:00Z")), None);
    }

    #[test]
    fn back_to_back_windows_are_one_freeze() {
        // Every hour on the hour, for 90 minutes: frozen for ever, but the
        // end said is as far as the chain was followed.
        let f = schedule("0 * * * *", "90m", "UTC");
        let end = f.window_end_at(at("2026-12-04T10:10:00Z")).unwrap();
        assert!(end > at("2026-12-06T00:00:00Z"), "{end}");
        // Windows that only touch end at the last one.
        let f = schedule("0 9,10 * * *", "1h", "UTC");
        assert_eq!(
            f.window_end_at(at("2026-12-04T09:30:00Z")),
            Some(at("2026-12-04T11:00:00Z"))
        );
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_freeze_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_freeze_duration("30s"), None);
        assert_eq!(parse_freeze_duration("32d"), None);
        assert_eq!(parse_freeze_duration("soon"), None);
    }

    #[test]
    fn the_config_check_names_the_field_at_fault() {
        let with = |freeze: &str| {
            crate::Config::from_toml_str(&format!(
                r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["dev", "prod"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
[[commands."/deploy".freezes]]
{freeze}
"#
            ))
        };
        let good = r#"cron = "0 17 * * 5"
duration = "2h"
timezone = "Europe/Berlin"
environments = ["prod"]
reason = "weekend""#;
        let config = with(good).unwrap();
        let deploy = config.command("/deploy").unwrap();
        assert_eq!(deploy.freezes.len(), 1);
        assert_eq!(deploy.freeze_scope("prod"), "deploy/prod");
        let at = "commands.\"/deploy\".freezes[0]";
        for (from, to, field) in [
            ("0 17 * * 5", "0 17 * *", "cron"),
            ("0 17 * * 5", "0 0 17 * * 5", "cron"),
            ("0 17 * * 5", "0 25 * * 5", "cron"),
            ("2h", "2 fortnights", "duration"),
            ("2h", "10s", "duration"),
            ("Europe/Berlin", "Mars/Olympus", "timezone"),
            ("[\"prod\"]", "[\"qa\"]", "environments"),
            ("[\"prod\"]", "[]", "environments"),
            ("\"weekend\"", "\" \"", "reason"),
        ] {
            let err = with(&good.replace(from, to)).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{at}.{field}: ")), "{to}: {err}");
        }
        // An unknown field is refused by name, and the time zone defaults to UTC.
        let err = with(&format!("{good}\nwhen = \"friday\"")).unwrap_err();
        assert!(err.to_string().contains("when"), "{err}");
        let utc = with(&good.replace("timezone = \"Europe/Berlin\"\n", "")).unwrap();
        assert_eq!(utc.command("/deploy").unwrap().freezes[0].timezone, Tz::UTC);
    }
}
