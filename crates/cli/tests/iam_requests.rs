//! What the `baton` binary asks DynamoDB for, as IAM sees it: the action,
//! the leading key and the attribute names of every request, recorded at
//! the wire by a loopback proxy between the binary and DynamoDB Local.
//!
//! IAM conditions on a CI role (`infra/modules/ci-role`) decide by exactly
//! these: `dynamodb:LeadingKeys` (the partition key values) and
//! `dynamodb:Attributes` (the attribute names a request uses). The requests
//! are kept in `tests/infra/iam-eval/cli-requests.json`, which the policy
//! evaluation in `tests/infra` reads, so that test asks the evaluator about
//! the requests the code really sends, not a list typed by hand. This test
//! fails when the file no longer matches what the binary sends; run it with
//! `BATON_UPDATE_IAM_REQUESTS=1` to write the file anew.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use baton_lock::schema::{ACTIVE_INDEX_PARTITION_KEY, FORCE_UNLOCK_ATTRIBUTE, TABLE_PARTITION_KEY};
use baton_testkit::{FaultProxy, ProxiedRequest, TestTable, unique_name};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_baton");
const UPDATE_ENV: &str = "BATON_UPDATE_IAM_REQUESTS";

/// Words of DynamoDB's expression grammar: anything else outside a
/// placeholder would be an attribute named in the clear, which this test
/// must see to report it.
const GRAMMAR: &[&str] = &[
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "if_not_exists",
    "list_append",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
];

fn committed_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/infra/iam-eval/cli-requests.json")
}

/// The binary with a clean environment against `endpoint` (the proxy).
struct Baton<'a> {
    table: &'a TestTable,
    endpoint: String,
    home: PathBuf,
}

impl Baton<'_> {
    fn run(&self, args: &[&str]) -> (i32, Value) {
        let out = Command::new(BIN)
            .args(["--json"])
            .args(args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", &self.home)
            .env("USER", "tester")
            .env("BATON_TABLE", &self.table.name)
            .env("AWS_ENDPOINT_URL_DYNAMODB", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "baton")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .output()
            .expect("run baton");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "baton {args:?} printed no JSON ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), value)
    }
}

/// One request as IAM authorizes it.
fn as_iam(request: &ProxiedRequest) -> Value {
    let body: Value = serde_json::from_slice(&request.body).expect("DynamoDB JSON body");
    let obj = body.as_object().expect("a JSON object");
    let names: BTreeMap<String, String> = obj
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let mut attributes: BTreeSet<String> = names.values().cloned().collect();
    let key = obj.get("Key").and_then(Value::as_object);
    attributes.extend(key.into_iter().flat_map(|k| k.keys().cloned()));
    for field in [
        "UpdateExpression",
        "ConditionExpression",
        "KeyConditionExpression",
        "FilterExpression",
        "ProjectionExpression",
    ] {
        if let Some(text) = obj.get(field).and_then(Value::as_str) {
            let bare = bare_names(text);
            assert!(
                bare.is_empty(),
                "{} {field} names {bare:?} without a placeholder: {text}",
                request.operation
            );
        }
    }
    for legacy in ["AttributesToGet", "AttributeUpdates", "Expected"] {
        assert!(
            !obj.contains_key(legacy),
            "{} uses {legacy}",
            request.operation
        );
    }
    let leading_keys: Vec<String> = match key {
        Some(k) => k
            .get(TABLE_PARTITION_KEY)
            .and_then(|v| v["S"].as_str())
            .map(|s| vec![s.to_owned()])
            .unwrap_or_default(),
        // A query's leading key is the value its key condition gives the
        // index's partition key.
        None => {
            let text = obj
                .get("KeyConditionExpression")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let words: Vec<&str> = text.split_whitespace().collect();
            words
                .windows(3)
                .filter(|w| {
                    w[1] == "="
                        && names.get(w[0]).map(String::as_str) == Some(ACTIVE_INDEX_PARTITION_KEY)
                })
                .filter_map(|w| body["ExpressionAttributeValues"][w[2]]["S"].as_str())
                .map(str::to_owned)
                .collect()
        }
    };
    json!({
        "operation": request.operation,
        "index": obj.get("IndexName"),
        "leading_keys": leading_keys,
        "attributes": attributes,
    })
}

/// Identifiers in an expression that are neither placeholders nor grammar.
fn bare_names(expression: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut placeholder = false;
    for c in expression.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        let is_name = !word.is_empty()
            && !placeholder
            && !word.starts_with(|d: char| d.is_ascii_digit())
            && !GRAMMAR.contains(&word.as_str());
        if is_name {
            out.push(std::mem::take(&mut word));
        }
        word.clear();
        placeholder = c == '#' || c == ':';
    }
    out
}

/// Runs every command a pipeline uses through the proxy and records, per
/// command, the distinct requests it sent.
#[test]
fn the_committed_cli_requests_are_what_the_binary_sends() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let table = runtime.block_on(TestTable::create());
    let proxy = runtime
        .block_on(FaultProxy::passthrough(&table.endpoint))
        .expect("proxy");
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("iam"));
    std::fs::create_dir_all(&home).expect("scratch dir");
    let baton = Baton {
        table: &table,
        endpoint: proxy.url(),
        home,
    };

    let mut commands: Vec<Value> = Vec::new();
    // Lock ids and fences differ on every run; the file shows them by name.
    let mut volatile: Vec<(String, &str)> = Vec::new();
    let mut record = |name: &str, args: &[&str], want: i32| -> Value {
        proxy.clear();
        let (code, out) = baton.run(args);
        assert_eq!(code, want, "baton {args:?}: {out}");
        let mut requests: Vec<Value> = Vec::new();
        for r in proxy.take() {
            let r = as_iam(&r);
            if !requests.contains(&r) {
                requests.push(r);
            }
        }
        assert!(!requests.is_empty(), "baton {args:?} sent nothing");
        let shown: Vec<&str> = args
            .iter()
            .map(|a| {
                volatile
                    .iter()
                    .find(|(v, _)| v == a)
                    .map_or(*a, |(_, name)| *name)
            })
            .collect();
        commands.push(json!({ "command": name, "args": shown, "requests": requests }));
        if let (Some(id), Some(fence)) = (out["lockId"].as_str(), out["fence"].as_u64()) {
            volatile.push((id.to_owned(), "LOCK_ID"));
            volatile.push((fence.to_string(), "FENCE"));
        }
        out
    };

    let grant = record("acquire", &["acquire", "router-plt", "--ttl", "10m"], 0);
    let lock_id = grant["lockId"].as_str().expect("lockId").to_owned();
    let fence = grant["fence"].as_u64().expect("fence").to_string();
    record(
        "renew",
        &["renew", "router-plt", "--lock-id", &lock_id, "--ttl", "10m"],
        0,
    );
    record("status", &["status", "router-plt"], 0);
    record(
        "verify",
        &[
            "verify",
            "router-plt",
            "--lock-id",
            &lock_id,
            "--fence",
            &fence,
        ],
        0,
    );
    record("list", &["list", "--prefix", "router-"], 0);
    record("queue", &["queue", "router-plt"], 0);
    // Someone else joins the line, waits a second and leaves it.
    record(
        "acquire --queue",
        &[
            "acquire",
            "router-plt",
            "--owner",
            "other",
            "--wait",
            "1s",
            "--queue",
        ],
        3,
    );
    record(
        "release",
        &["release", "router-plt", "--lock-id", &lock_id],
        0,
    );
    record("acquire", &["acquire", "router-plt", "--ttl", "10m"], 0);
    record(
        "force-unlock",
        &[
            "force-unlock",
            "router-plt",
            "--actor",
            "ops",
            "--reason",
            "runner gone",
        ],
        0,
    );
    record("wait", &["wait", "router-plt", "--timeout", "5s"], 0);
    record("run", &["run", "api-prod", "--", "true"], 0);
    record(
        "run --no-lock",
        &[
            "run",
            "api-prod",
            "--no-lock",
            "--reason",
            "hotfix",
            "--",
            "true",
        ],
        0,
    );

    // What the policy relies on, checked here too: only force-unlock names
    // the force attribute.
    for c in &commands {
        let names_it = c["requests"].as_array().into_iter().flatten().any(|r| {
            r["attributes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n == FORCE_UNLOCK_ATTRIBUTE))
        });
        assert_eq!(
            names_it,
            c["command"] == "force-unlock",
            "{FORCE_UNLOCK_ATTRIBUTE} in {c}"
        );
    }

    let document = json!({
        "about": "Every DynamoDB request of the baton CLI's commands as IAM sees it (action, leading key, attribute names), recorded at the wire against DynamoDB Local by crates/cli/tests/iam_requests.rs. Do not edit: run that test with BATON_UPDATE_IAM_REQUESTS=1.",
        "table_partition_key": TABLE_PARTITION_KEY,
        "commands": commands,
    });
    let text = serde_json::to_string_pretty(&document).expect("JSON") + "\n";
    let path = committed_file();
    if std::env::var_os(UPDATE_ENV).is_some() {
        std::fs::write(&path, &text).expect("write the requests file");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is not what the binary sends; run this test with {UPDATE_ENV}=1 and commit the file.\nsent:\n{text}",
        path.display()
    );
}

#[test]
fn bare_names_are_found_and_placeholders_are_not() {
    assert_eq!(
        bare_names("SET #a = :a, forced = if_not_exists(#b, :zero) REMOVE ttl"),
        ["forced", "ttl"]
    );
    assert!(bare_names("#w[0].#t = :t0 AND size(#w) = :zero").is_empty());
}
