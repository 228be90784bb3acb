//! Where a chatops grant came from: the Slack workspace and channel its
//! command was typed in. Stored on the grant as its `correlationId`, so a
//! completion or a reconciler notice goes back to that channel without the
//! pipeline having to carry it.

use std::fmt;
use std::str::FromStr;

/// A Slack channel in a workspace, as `slack:TEAM:CHANNEL` on the grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackOrigin {
    pub team: String,
    pub channel: String,
}

impl fmt::Display for SlackOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slack:{}:{}", self.team, self.channel)
    }
}

impl FromStr for SlackOrigin {
    type Err = ();

    /// Reads `slack:TEAM:CHANNEL`; anything else (a CI run id, a CLI
    /// holder's own correlation) is not a Slack origin.
    fn from_str(s: &str) -> Result<SlackOrigin, ()> {
        let rest = s.strip_prefix("slack:").ok_or(())?;
        let (team, channel) = rest.split_once(':').ok_or(())?;
        if team.is_empty() || channel.is_empty() || channel.contains(':') {
            return Err(());
        }
        Ok(SlackOrigin {
            team: team.to_owned(),
            channel: channel.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_reads_back_from_what_it_writes() {
        let origin = SlackOrigin {
            team: "T0ACME".into(),
            channel: "C0BUILDS".into(),
        };
        assert_eq!(origin.to_string(), "slack:T0ACME:C0BUILDS");
        assert_eq!(origin.to_string().parse(), Ok(origin));
    }

    #[test]
    fn other_correlations_are_not_slack_origins() {
        for other in [
            "",
            "gha:12345",
            "slack:",
            "slack:T1",
            "slack:T1:",
            "slack::C1",
            "slack:T:C:x",
        ] {
            assert_eq!(other.parse::<SlackOrigin>(), Err(()), "{other:?}");
        }
    }
}
