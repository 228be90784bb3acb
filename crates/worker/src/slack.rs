//! Talking to Slack: replies through a command's `response_url`, and
//! `chat.postMessage` for messages that outlive it (completion notices).

use std::time::Duration;

use baton_chatops::{PostMessage, Reply};
use baton_runtime::Secret;
use tokio::time::Instant;

use crate::ports::Chat;
use crate::retry::{Attempt, retry_after, with_retries};

/// Why a Slack message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Slack kept failing (5xx, 429, timeouts) until the time budget ran out:
    /// worth another try later.
    #[error("Slack did not accept the message in time: {0}")]
    Unavailable(String),
    /// Slack refused the message (expired `response_url`, unknown channel,
    /// bad token): retrying will not help.
    #[error("Slack refused the message: {0}")]
    Refused(String),
    /// The worker's own check refused a `response_url` outside the allowed
    /// prefix (a crafted message): Slack was never asked.
    #[error("this response_url is not under {0}, the only place the worker replies to")]
    ForeignResponseUrl(String),
}

/// The envelope of every Slack Web API answer.
#[derive(Debug, Default, serde::Deserialize)]
struct WebApiAnswer {
    #[serde(default)]
    ok: bool,
    error: Option<String>,
    /// `usergroups.users.list`'s members.
    #[serde(default)]
    users: Vec<String>,
}

/// A Slack Web API client with the bot token, plus the `response_url` rules.
#[derive(Debug, Clone)]
pub struct Slack {
    http: reqwest::Client,
    api_url: String,
    bot_token: Secret,
    response_url_prefix: String,
}

impl Slack {
    /// `api_url` is `https://slack.com/api` in production; `response_url_prefix`
    /// is the only place replies may be posted to (Slack's hooks host), so a
    /// crafted message cannot make the worker post elsewhere.
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        bot_token: Secret,
        response_url_prefix: String,
    ) -> Slack {
        Slack {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            bot_token,
            response_url_prefix,
        }
    }

    async fn web_api(
        &self,
        method: &str,
        body: serde_json::Value,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        let url = format!("{}/{method}", self.api_url);
        with_retries(deadline, || async {
            let sent = self
                .http
                .post(&url)
                .bearer_auth(self.bot_token.expose())
                .json(&body)
                .send()
                .await;
            classify(sent, true).await
        })
        .await
    }
}

impl Chat for Slack {
    /// Replies to a slash command through its `response_url`.
    async fn respond(
        &self,
        response_url: &str,
        reply: &Reply,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        if !url_is_under(response_url, &self.response_url_prefix) {
            return Err(SlackError::ForeignResponseUrl(
                self.response_url_prefix.clone(),
            ));
        }
        let body = reply.to_json();
        with_retries(deadline, || async {
            let sent = self.http.post(response_url).json(&body).send().await;
            classify(sent, false).await
        })
        .await
    }

    /// Posts to a channel with `chat.postMessage` and the bot token.
    async fn post_message(
        &self,
        message: &PostMessage,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        self.web_api("chat.postMessage", message.to_json(), deadline)
            .await
    }

    /// Shows `reply` to `user` only, in `channel`, with `chat.postEphemeral`:
    /// the way to answer once a command's `response_url` has expired.
    async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        reply: &Reply,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        let mut body = reply.clone().with_channel(channel).to_json();
        body["user"] = serde_json::Value::String(user.to_owned());
        self.web_api("chat.postEphemeral", body, deadline).await
    }

    /// A user group's members with `usergroups.users.list` (bot token with
    /// `usergroups:read`). The group id was checked as letters and digits
    /// when the config was read, so it is safe in the query.
    async fn usergroup_members(
        &self,
        group: &str,
        deadline: Instant,
    ) -> Result<Vec<String>, SlackError> {
        if !group.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SlackError::Refused(format!(
                "{group:?} is not a user group id"
            )));
        }
        let url = format!("{}/usergroups.users.list?usergroup={group}", self.api_url);
        let left = deadline.saturating_duration_since(Instant::now());
        let response = self
            .http
            .get(&url)
            .bearer_auth(self.bot_token.expose())
            .timeout(left)
            .send()
            .await
            .map_err(|e| SlackError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(SlackError::Unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(SlackError::Refused(format!("HTTP {status}")));
        }
        let answer: WebApiAnswer = response
            .json()
            .await
            .map_err(|e| SlackError::Refused(format!("unreadable answer: {e}")))?;
        if !answer.ok {
            return Err(SlackError::Refused(
                answer.error.unwrap_or_else(|| "unknown error".into()),
            ));
        }
        Ok(answer.users)
    }
}

/// Sorts one HTTP outcome into done / permanent / transient. Web API calls
/// answer 200 with `{"ok": false}` on refusal; `response_url` answers plain text.
async fn classify(
    sent: Result<reqwest::Response, reqwest::Error>,
    web_api: bool,
) -> Attempt<(), SlackError> {
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Transient {
                error: SlackError::Unavailable(e.to_string()),
                after: None,
            };
        }
    };
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        let after = retry_after(&response).map(|d| d.min(Duration::from_secs(30)));
        return Attempt::Transient {
            error: SlackError::Unavailable(format!("HTTP {status}")),
            after,
        };
    }
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Attempt::Permanent(SlackError::Refused(format!(
            "HTTP {status}: {}",
            text.trim()
        )));
    }
    if web_api {
        let answer: WebApiAnswer = response.json().await.unwrap_or_default();
        if !answer.ok {
            let error = answer.error.as_deref().unwrap_or("unknown error");
            if error == "ratelimited" {
                return Attempt::Transient {
                    error: SlackError::Unavailable(error.to_owned()),
                    after: None,
                };
            }
            return Attempt::Permanent(SlackError::Refused(error.to_owned()));
        }
    }
    Attempt::Done(())
}

/// Whether `url` lies under `prefix`, compared as parsed URLs: the same
/// scheme, host and port exactly, no credentials, and a path inside the
/// prefix's path. A string prefix would let `https://hooks.slack.com@evil/`
/// through when the prefix lacks its trailing slash.
fn url_is_under(url: &str, prefix: &str) -> bool {
    let (Ok(url), Ok(prefix)) = (reqwest::Url::parse(url), reqwest::Url::parse(prefix)) else {
        return false;
    };
    let base = prefix.path().trim_end_matches('/');
    url.scheme() == prefix.scheme()
        && url.host_str() == prefix.host_str()
        && url.port_or_known_default() == prefix.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none()
        && (url.path() == base || url.path().starts_with(&format!("{base}/")))
}

#[cfg(test)]
mod tests {
    use super::url_is_under;

    #[test]
    fn response_urls_are_compared_by_scheme_host_port_and_path() {
        for prefix in ["https://hooks.slack.com", "https://hooks.slack.com/"] {
            assert!(url_is_under(
                "https://hooks.slack.com/commands/T1/2/x",
                prefix
            ));
            for evil in [
                "https://hooks.slack.com@evil.example/commands/T1",
                "https://hooks.slack.com.evil.example/commands",
                "http://hooks.slack.com/commands",
                "https://hooks.slack.com:8443/commands",
                "https://user:pw@hooks.slack.com/commands",
                "not a url",
            ] {
                assert!(!url_is_under(evil, prefix), "{evil} under {prefix}");
            }
        }
        assert!(url_is_under(
            "http://127.0.0.1:9/response/a",
            "http://127.0.0.1:9/response/"
        ));
        assert!(!url_is_under(
            "http://127.0.0.1:9/responsex/a",
            "http://127.0.0.1:9/response"
        ));
    }
}
