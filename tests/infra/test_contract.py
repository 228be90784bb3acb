"""Contract tests: infra/ against the Rust code (see infra_contract.py).

Two kinds of test per check:
- on the real repository: infra and code agree (no problems);
- on a copy of infra/ in a tmp dir, next to a small synthetic Rust workspace
  that makes exactly the calls the infra grants, with one name or timeout
  changed by hand: the same check must now report a problem. The synthetic
  code keeps these tests independent of how far the real crates have got.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

import infra_contract as contract

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------
# The real tree
# --------------------------------------------------------------------------


def test_table_schema_matches_rust_constants():
    problems = contract.check_table_schema(REPO)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("role", sorted(contract.ROLES))
def test_granted_actions_match_code(role):
    problems, skip = contract.check_role_actions(REPO, role)
    if skip:
        pytest.skip(skip)
    assert problems == [], "\n".join(problems)


def test_visibility_timeout_is_6x_worker_timeout():
    problems = contract.check_visibility_timeout(REPO)
    assert problems == [], "\n".join(problems)


def test_no_wildcard_account_in_arns():
    problems = contract.check_arn_accounts(REPO)
    assert problems == [], "\n".join(problems)


def test_worker_and_router_get_the_same_command_config():
    """The router accepts completions only from the pipelines of its config
    and refuses commands by its policy (workspaces, channels, protected
    environments, allowed users) before they are queued; the worker decides
    again. Both must read one config, or a door would decide by other rules."""
    problems = contract.check_shared_config(REPO)
    assert problems == [], "\n".join(problems)


def test_reconciler_schedule_invokes_only_the_worker():
    problems = contract.check_reconcile_schedule(REPO)
    assert problems == [], "\n".join(problems)


def test_every_secret_parameter_in_the_environment_is_granted():
    assert contract.check_secret_parameters(REPO) == []


def test_alarms_notify_the_topic_and_the_router_is_capped():
    problems = contract.check_alarms(REPO)
    assert problems == [], "\n".join(problems)


def test_only_the_router_may_send_to_the_queue():
    problems = contract.check_queue_senders(REPO)
    assert problems == [], "\n".join(problems)


def test_queue_sender_check_fails_without_the_router_role(tree):
    unit = tree / "infra/live/plt/command-queue/terragrunt.hcl"
    unit.write_text(unit.read_text().replace('["baton-router-role"]', '["someone-else"]'))
    problems = contract.check_queue_senders(tree)
    assert any("baton-router-role" in p for p in problems), problems


def test_live_units_are_wired():
    """Every unit points at a module; worker and router depend on what they use."""
    units = {u.path.name: u for u in contract.live_units(REPO)}
    assert {"locks-table", "command-queue", "worker", "router", "api"} <= set(units)
    by_path = {u.path: u.module for u in units.values()}
    for unit in units.values():
        assert unit.module and (REPO / contract.MODULES / unit.module).is_dir(), unit.path
    assert sorted(by_path[p] for p in units["worker"].dependencies.values()) == [
        contract.QUEUE_MODULE,
        contract.TABLE_MODULE,
    ]
    assert [by_path[p] for p in units["router"].dependencies.values()] == [contract.QUEUE_MODULE]
    assert [by_path[p] for p in units["api"].dependencies.values()] == [contract.TABLE_MODULE]
    assert units["locks-table"].dependencies == {} and units["command-queue"].dependencies == {}


# --------------------------------------------------------------------------
# A copy of infra/ with synthetic code that matches it
# --------------------------------------------------------------------------

SYNTHETIC = {
    "Cargo.toml": """
        [workspace]
        members = ["crates/*"]
        [workspace.dependencies]
        baton-lock = { path = "crates/lock" }
        baton-testkit = { path = "crates/testkit" }
    """,
    "crates/lock/Cargo.toml": """
        [package]
        name = "baton-lock"
        [dependencies]
        aws-sdk-dynamodb = "1"
    """,
    "crates/lock/src/schema.rs": """
        pub const TABLE_PARTITION_KEY: &str = "lockKey";
        pub const TTL_ATTRIBUTE: &str = "ttl";
        pub const ACTIVE_INDEX_NAME: &str = "active-locks";
        pub const ACTIVE_INDEX_PARTITION_KEY: &str = "activeLock";
        pub mod history {
            pub const PARTITION_KEY: &str = "lockKey";
            pub const SORT_KEY: &str = "fence";
            pub const TIME_INDEX_NAME: &str = "by-day";
            pub const TIME_INDEX_PARTITION_KEY: &str = "endedDay";
            pub const TIME_INDEX_SORT_KEY: &str = "endedAtMs";
        }
    """,
    "crates/lock/src/lib.rs": """
        pub async fn acquire(c: &Client) {
            c.update_item().table_name("t").send().await;
        }
        pub async fn status(c: &Client) {
            c.get_item()
                .table_name("t")
                .send()
                .await;
        }
        pub async fn list(c: &Client) {
            let mut request = c.query().table_name("t").index_name("active-locks");
            request.send().await;
        }
        // A comment is not a call: .delete_item()
        /* nor a /* nested */ block comment: c.delete_item().send() */
        const DOC: &str = "neither is a string: .scan()";
        const RAW: &str = r#"nor a raw "string": c.delete_item().send()"#;
        fn quoted<'a>(s: &'a str) -> (char, &'a str) { ('"', s) }
        #[cfg(test)]
        mod tests {
            fn setup(c: &Client) { let _ = c.put_item().send(); }
        }
    """,
    # The freeze-checked acquire: one transaction of a condition check on
    # the freeze and the grant's update (ConditionCheckItem + UpdateItem).
    "crates/lock/src/frozen_acquire.rs": """
        pub async fn acquire_unless_frozen(c: &Client) {
            let check = ConditionCheck::builder().table_name("t").build();
            let update = Update::builder().table_name("t").build();
            c.transact_write_items().send().await;
        }
    """,
    # The admin helper no Lambda runs: excluded from the comparison.
    "crates/lock/src/table.rs": """
        pub async fn create(c: &Client) {
            c.create_table().send().await;
            c.update_time_to_live().send().await;
            c.describe_table().send().await;
        }
    """,
    "crates/lock/tests/it.rs": """
        async fn cleanup(c: &Client) { c.delete_item().send().await; c.scan().send().await; }
    """,
    "crates/worker/Cargo.toml": """
        [package]
        name = "baton-worker"
        [dependencies]
        baton-lock.workspace = true
        [dev-dependencies]
        baton-testkit.workspace = true
    """,
    "crates/worker/src/main.rs": """
        use lambda_runtime::{service_fn, LambdaEvent};
        async fn secrets(ssm: &SsmClient) {
            ssm.get_parameter().name("/baton/plt/slack/bot-token").with_decryption(true).send().await;
        }
        fn path(uri: &Uri) -> Option<&str> { uri.query() }
        fn taken_over(key: &str) { warn!(lock_key = %key, "took over an expired lock"); }
    """,
    "crates/router/Cargo.toml": """
        [package]
        name = "baton-router"
    """,
    "crates/router/src/main.rs": """
        use lambda_http::{run, service_fn};
        async fn enqueue(sqs: &SqsClient) {
            sqs.send_message().queue_url("u").message_group_id("k").send().await;
        }
        async fn secrets(ssm: &SsmClient) {
            ssm.get_parameter().name("/baton/plt/slack/signing-secret").send().await;
        }
    """,
    # The history consumer: writes the history table; its local stream
    # follower is not run in Lambda (excluded).
    "crates/history/Cargo.toml": """
        [package]
        name = "baton-history"
        [dependencies]
        baton-lock.workspace = true
    """,
    "crates/history/src/main.rs": """
        use lambda_runtime::{service_fn, LambdaEvent};
        async fn record(c: &Client) {
            c.put_item().table_name("h").send().await;
            c.update_item().table_name("h").send().await;
        }
    """,
    "crates/history/src/follow.rs": """
        async fn follow(c: &Client) { c.describe_table().send().await; }
    """,
    "crates/api/Cargo.toml": """
        [package]
        name = "baton-api"
        [dependencies]
        baton-lock.workspace = true
    """,
    "crates/api/src/main.rs": """
        use lambda_http::{run, service_fn};
        async fn tokens(ssm: &SsmClient) {
            ssm.get_parameter().name("/baton/plt/api/tokens").with_decryption(true).send().await;
        }
    """,
    # Test helpers may call anything: never deployed.
    "crates/testkit/Cargo.toml": """
        [package]
        name = "baton-testkit"
    """,
    "crates/testkit/src/lib.rs": """
        async fn wipe(c: &Client) { c.delete_item().send().await; c.scan().send().await; }
    """,
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO / "infra",
        tmp_path / "infra",
        ignore=shutil.ignore_patterns(".terragrunt-cache", ".terraform"),
    )
    for rel, text in SYNTHETIC.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return tmp_path


def edit(root: Path, rel: str, old: str, new: str) -> None:
    """Replace `old` (which must be there) by `new` in root/rel."""
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}: the mutation would test nothing"
    path.write_text(text.replace(old, new), encoding="utf-8")


def all_problems(root: Path) -> list[str]:
    problems = contract.check_table_schema(root)
    for role in contract.ROLES:
        role_problems, skip = contract.check_role_actions(root, role)
        assert skip is None
        problems += role_problems
    return (
        problems
        + contract.check_visibility_timeout(root)
        + contract.check_arn_accounts(root)
        + contract.check_shared_config(root)
        + contract.check_reconcile_schedule(root)
        + contract.check_secret_parameters(root)
        + contract.check_alarms(root)
    )


def test_copy_with_matching_code_has_no_problems(tree):
    """Baseline for the mutations below: the unmutated copy is clean."""
    assert all_problems(tree) == []


# --- table key, TTL attribute, index names --------------------------------

LOCK_TABLE_TF = "infra/modules/lock-table/main.tf"


@pytest.mark.parametrize(
    "rel, old, new, expect",
    [
        # infra renamed by hand
        (LOCK_TABLE_TF, 'hash_key                    = "lockKey"', 'hash_key = "LockID"', "hash_key"),
        (LOCK_TABLE_TF, 'attribute_name = "ttl"', 'attribute_name = "expiresAt"', "TTL_ATTRIBUTE"),
        (LOCK_TABLE_TF, 'name            = "active-locks"', 'name = "active"', "ACTIVE_INDEX_NAME"),
        (LOCK_TABLE_TF, 'hash_key        = "activeLock"', 'hash_key = "status"', "ACTIVE_INDEX_PARTITION_KEY"),
        # code renamed by hand
        ("crates/lock/src/schema.rs", '"lockKey"', '"pk"', "TABLE_PARTITION_KEY"),
        ("crates/lock/src/schema.rs", 'TTL_ATTRIBUTE: &str = "ttl"', 'TTL_ATTRIBUTE: &str = "expires"', "TTL_ATTRIBUTE"),
        ("crates/lock/src/schema.rs", '"active-locks"', '"held-locks"', "ACTIVE_INDEX_NAME"),
        # a constant the check cannot find: renamed, commented out, not a literal, private
        ("crates/lock/src/schema.rs", "pub const TTL_ATTRIBUTE", "pub const TTL_ATTR", "TTL_ATTRIBUTE"),
        ("crates/lock/src/schema.rs", 'pub const TTL_ATTRIBUTE: &str = "ttl";', '// pub const TTL_ATTRIBUTE: &str = "ttl";', "TTL_ATTRIBUTE"),
        ("crates/lock/src/schema.rs", '"ttl"', 'concat!("t", "tl")', "TTL_ATTRIBUTE"),
        ("crates/lock/src/schema.rs", "pub const TTL_ATTRIBUTE", "const TTL_ATTRIBUTE", "TTL_ATTRIBUTE"),
    ],
)
def test_table_check_fails_on_renamed_name(tree, rel, old, new, expect):
    edit(tree, rel, old, new)
    problems = contract.check_table_schema(tree)
    assert any(expect in p for p in problems), problems


def test_table_check_fails_on_live_override(tree):
    """A live unit cannot override a name the module hard-codes from the code..."""
    edit(tree, LOCK_TABLE_TF, 'hash_key                    = "lockKey"', "hash_key = var.hash_key")
    edit(
        tree,
        "infra/modules/lock-table/variables.tf",
        'variable "name" {',
        'variable "hash_key" {\n  type    = string\n  default = "lockKey"\n}\n\nvariable "name" {',
    )
    assert contract.check_table_schema(tree) == []  # ...resolved through the default
    edit(tree, "infra/live/plt/locks-table/terragrunt.hcl", "inputs = {", 'inputs = {\n  hash_key = "id"')
    problems = contract.check_table_schema(tree)
    assert any("locks-table" in p and "hash_key" in p for p in problems), problems


def test_table_check_fails_without_schema_file(tree):
    (tree / "crates/lock/src/schema.rs").unlink()
    problems = contract.check_table_schema(tree)
    assert problems and "schema.rs is missing" in problems[0]


# --- granted actions vs SDK calls -------------------------------------------

WORKER_IAM = "infra/modules/worker-function/iam.tf"
ROUTER_IAM = "infra/modules/router-function/iam.tf"
WORKER_MAIN = "infra/modules/worker-function/main.tf"
# Role, log group, function and the statements every function gets (SSM
# parameters, logs, X-Ray): one module both wrappers call.
SHARED_IAM = "infra/modules/lambda-function/iam.tf"
SHARED_MAIN = "infra/modules/lambda-function/main.tf"


def test_actions_check_fails_when_code_calls_more(tree):
    """New code calls DeleteItem (e.g. a force unlock): the worker lacks it."""
    edit(tree, "crates/lock/src/lib.rs", "pub async fn acquire", "pub async fn forget(c: &Client) { c.delete_item().table_name(\"t\").send().await; }\npub async fn acquire")
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("code calls dynamodb:DeleteItem" in p and "crates/lock/src/lib.rs:1" in p for p in problems), problems
    router_problems, _ = contract.check_role_actions(tree, "router")
    assert router_problems == []  # the router does not link the lock crate


def test_actions_check_fails_when_infra_grants_more(tree):
    edit(tree, WORKER_IAM, '["dynamodb:GetItem", "dynamodb:UpdateItem"]', '["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"]')
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("grants dynamodb:PutItem" in p for p in problems), problems


def test_actions_check_fails_when_infra_grants_a_renamed_action(tree):
    edit(tree, WORKER_IAM, '["dynamodb:Query"]', '["dynamodb:Scan"]')
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("grants dynamodb:Scan" in p for p in problems), problems
    assert any("code calls dynamodb:Query" in p for p in problems), problems


def test_actions_check_fails_on_router_ssm_batch_call(tree):
    """The router switches to GetParameters (one call for both secrets)."""
    edit(tree, "crates/router/src/main.rs", "ssm.get_parameter()", "ssm.get_parameters()")
    problems, _ = contract.check_role_actions(tree, "router")
    assert any("code calls ssm:GetParameters " in p for p in problems), problems
    assert any("grants ssm:GetParameter " in p for p in problems), problems


def test_actions_check_fails_when_router_grant_removed(tree):
    edit(tree, ROUTER_IAM, 'actions   = ["sqs:SendMessage"]', 'actions   = ["sqs:SendMessageBatch"]')
    problems, _ = contract.check_role_actions(tree, "router")
    assert any("code calls sqs:SendMessage" in p for p in problems), problems


API_IAM = "infra/modules/api-function/iam.tf"


def test_api_role_check_fails_when_a_lock_grant_is_removed(tree):
    edit(tree, API_IAM, '["dynamodb:GetItem", "dynamodb:UpdateItem"]', '["dynamodb:GetItem"]')
    problems, _ = contract.check_role_actions(tree, "api")
    assert any("api: code calls dynamodb:UpdateItem" in p for p in problems), problems


def test_api_role_check_fails_when_the_api_writes(tree):
    """The API starts writing an item itself: its role lacks PutItem."""
    edit(tree, "crates/api/src/main.rs", "async fn tokens", "async fn note(c: &Client) { c.put_item().table_name(\"t\").send().await; }\nasync fn tokens")
    problems, _ = contract.check_role_actions(tree, "api")
    assert any("api: code calls dynamodb:PutItem" in p for p in problems), problems


def test_actions_check_requires_event_source_actions(tree):
    edit(tree, WORKER_IAM, '"sqs:ReceiveMessage", ', "")
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("sqs:ReceiveMessage" in p and "event source mapping" in p for p in problems), problems


def test_actions_check_expands_transactions(tree):
    """IAM has no TransactWriteItems: each item kind needs its own action."""
    edit(
        tree,
        "crates/lock/src/lib.rs",
        "pub async fn acquire",
        "pub async fn swap(c: &Client) { let p = Put::builder().build(); c.transact_write_items().send().await; }\npub async fn acquire",
    )
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("code calls dynamodb:PutItem" in p for p in problems), problems


# --- how the Rust code is read (tests/infra/sdk-calls) ------------------------

LOCK_LIB = "crates/lock/src/lib.rs"


def add_lock_fn(root: Path, code: str) -> None:
    """Put `code` (one line) at line 1 of the lock crate, which the worker links."""
    edit(root, LOCK_LIB, "pub async fn acquire", code + "\npub async fn acquire")


def test_actions_check_fails_on_unparsable_source(tree):
    """A file the parser cannot read is a problem, not a file without calls."""
    add_lock_fn(tree, "pub async fn forget(c: &Client) { c.delete_item().send().await }}")
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any(LOCK_LIB in p and "cannot be parsed as Rust" in p for p in problems), problems


@pytest.mark.parametrize(
    "code",
    [
        # a macro whose body is expressions
        "pub async fn forget(c: &Client) { let _ = tokio::join!(c.delete_item().table_name(\"t\").send(), ready()); }",
        # one whose body no parser takes: its tokens are scanned
        "pub async fn forget(c: &Client) { tokio::select! { r = c.delete_item().send() => r, _ = tick() => {} } }",
    ],
)
def test_actions_check_finds_calls_inside_macros(tree, code):
    add_lock_fn(tree, code)
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("code calls dynamodb:DeleteItem" in p and f"{LOCK_LIB}:1" in p for p in problems), problems


@pytest.mark.parametrize(
    "code",
    [
        '#[cfg(test)] fn wipe(c: &Client) { c.delete_item().send(); }',
        '#[cfg(all(test, feature = "local"))] fn wipe(c: &Client) { c.delete_item().send(); }',
        "#[tokio::test] async fn wipe() { client().delete_item().send().await; }",
        "fn f(c: &Client) { #[cfg(test)] let _ = c.delete_item().send(); }",
    ],
)
def test_actions_check_skips_test_only_code(tree, code):
    add_lock_fn(tree, code)
    assert contract.check_role_actions(tree, "worker") == ([], None)
    # ...but not code that is also built outside tests
    edit(tree, LOCK_LIB, code, code.replace("test", "not(test)").replace("tokio::not(test)", "tokio::main"))
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("code calls dynamodb:DeleteItem" in p for p in problems), problems


@pytest.mark.parametrize("cfg", ["#[cfg(test)]\n", ""])
def test_actions_check_skips_out_of_line_test_modules(tree, cfg):
    """`#[cfg(test)] mod tests;` and the modules it declares are not deployed."""
    with (tree / LOCK_LIB).open("a") as fh:
        fh.write(f"{cfg}mod tests;\n")
    (tree / "crates/lock/src/tests.rs").write_text("mod helpers;\nfn a(c: &Client) { c.delete_item().send(); }\n")
    (tree / "crates/lock/src/tests").mkdir()
    (tree / "crates/lock/src/tests/helpers.rs").write_text("fn b(c: &Client) { c.scan().send(); }\n")
    problems, _ = contract.check_role_actions(tree, "worker")
    if cfg:
        assert problems == []
    else:
        assert any("code calls dynamodb:DeleteItem" in p and "src/tests.rs:2" in p for p in problems), problems
        assert any("code calls dynamodb:Scan" in p and "src/tests/helpers.rs:1" in p for p in problems), problems


def test_actions_check_follows_a_builder_sent_later(tree):
    """query/scan count only as a DynamoDB request: here, once it is sent."""
    add_lock_fn(tree, "pub async fn all(c: &Client) { let request = c.scan(); request.send().await; }")
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("code calls dynamodb:Scan" in p for p in problems), problems
    edit(tree, LOCK_LIB, "request.send().await", "request.len()")
    assert contract.check_role_actions(tree, "worker") == ([], None)


def test_actions_check_fails_on_a_sent_operation_it_does_not_know(tree):
    """An SDK-shaped request missing from SDK_CALLS is reported, not ignored."""
    add_lock_fn(tree, 'pub async fn sql(c: &Client) { let s = c.execute_statement().statement("SELECT"); s.send().await; }')
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any(f"{LOCK_LIB}:1: c.execute_statement() is sent like an AWS SDK request" in p for p in problems), problems


def test_actions_check_honours_the_not_aws_marker(tree):
    add_lock_fn(tree, "pub async fn evict(cache: &Cache) { cache.delete_item().send().await; } // iam-contract: not-aws: the local cache")
    assert contract.check_role_actions(tree, "worker") == ([], None)
    edit(tree, LOCK_LIB, " // iam-contract: not-aws: the local cache", "")
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("code calls dynamodb:DeleteItem" in p for p in problems), problems


def test_actions_check_skips_missing_crate(tree):
    shutil.rmtree(tree / "crates/router")
    problems, skip = contract.check_role_actions(tree, "router")
    assert problems == [] and "crates/router does not exist" in skip


def test_actions_check_skips_placeholder_crate(tree):
    (tree / "crates/worker/src/main.rs").write_text("fn main() {}\n", encoding="utf-8")
    problems, skip = contract.check_role_actions(tree, "worker")
    assert problems == [] and "no Lambda handler yet" in skip


def test_actions_check_rejects_managed_policies(tree):
    with (tree / "infra/modules/router-function/iam.tf").open("a") as fh:
        fh.write(
            '\nresource "aws_iam_role_policy_attachment" "extra" {\n'
            "  role       = aws_iam_role.this.name\n"
            '  policy_arn = "arn:aws:iam::aws:policy/AmazonSQSFullAccess"\n}\n'
        )
    problems, _ = contract.check_role_actions(tree, "router")
    assert any("managed policy" in p for p in problems), problems


def test_actions_check_reads_the_shared_module(tree):
    """A grant in the shared module reaches both roles: an extra one is unused..."""
    edit(tree, SHARED_IAM, '["ssm:GetParameter"]', '["ssm:GetParameter", "ssm:GetParametersByPath"]')
    for role in ("worker", "router"):
        problems, _ = contract.check_role_actions(tree, role)
        assert any("grants ssm:GetParametersByPath" in p and "lambda-function" in p for p in problems), (role, problems)


def test_actions_check_fails_when_shared_grant_renamed(tree):
    """...and one the code needs, missing from it, is missing for both."""
    edit(tree, SHARED_IAM, '["ssm:GetParameter"]', '["ssm:GetParameters"]')
    for role in ("worker", "router"):
        problems, _ = contract.check_role_actions(tree, role)
        assert any("code calls ssm:GetParameter " in p for p in problems), (role, problems)
        assert any("grants ssm:GetParameters " in p for p in problems), (role, problems)


def test_actions_check_fails_when_caller_document_not_passed(tree):
    """The worker's own statements only count when its document reaches the role's policy."""
    edit(tree, WORKER_MAIN, "policy_documents         = [data.aws_iam_policy_document.this.json]", "policy_documents = []")
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("code calls dynamodb:GetItem" in p for p in problems), problems
    assert any("sqs:ReceiveMessage" in p and "event source mapping" in p for p in problems), problems


@pytest.mark.parametrize(
    "new, expect",
    [
        ('policy_documents = [jsonencode({ Version = "2012-10-17", Statement = [] })]', "cannot read its actions"),
        ("policy_documents = [data.aws_iam_policy_document.other.json]", "aws_iam_policy_document.other does not exist"),
        ("policy_documents = var.tags", "cannot read its actions"),
    ],
)
def test_actions_check_fails_on_unreadable_caller_document(tree, new, expect):
    edit(tree, WORKER_MAIN, "policy_documents         = [data.aws_iam_policy_document.this.json]", new)
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any(expect in p for p in problems), problems


def test_actions_check_rejects_managed_policies_in_shared_module(tree):
    with (tree / SHARED_IAM).open("a") as fh:
        fh.write(
            '\nresource "aws_iam_role_policy_attachment" "extra" {\n'
            "  role       = aws_iam_role.this.name\n"
            '  policy_arn = "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"\n}\n'
        )
    for role in ("worker", "router"):
        problems, _ = contract.check_role_actions(tree, role)
        assert any("managed policy" in p and "lambda-function" in p for p in problems), (role, problems)


def test_actions_check_rejects_non_local_module(tree):
    edit(tree, "infra/modules/router-function/main.tf", 'source = "../lambda-function"', 'source = "terraform-aws-modules/lambda/aws"')
    problems, _ = contract.check_role_actions(tree, "router")
    assert any("not a local module" in p for p in problems), problems


# --- visibility timeout >= 6x worker timeout ----------------------------------


@pytest.mark.parametrize(
    "rel, old, new, expect",
    [
        # the original bot's value: 240 s against 45 s is only 5.3x
        ("infra/live/plt/command-queue/terragrunt.hcl", "visibility_timeout_seconds = 300", "visibility_timeout_seconds = 240", "plt/command-queue/terragrunt.hcl"),
        ("infra/live/plt/worker/terragrunt.hcl", "timeout              = 45", "timeout              = 60", "plt/worker/terragrunt.hcl"),
        ("infra/modules/command-queue/variables.tf", "default     = 300", "default     = 120", "command-queue default"),
        ("infra/modules/worker-function/variables.tf", "default     = 45", "default     = 90", "worker-function default"),
    ],
)
def test_visibility_check_fails_on_changed_timeout(tree, rel, old, new, expect):
    edit(tree, rel, old, new)
    problems = contract.check_visibility_timeout(tree)
    assert any("below 6x" in p and expect in p for p in problems), problems


@pytest.mark.parametrize(
    "rel, old, new, expect",
    [
        # the worker passes a number instead of its variable...
        (WORKER_MAIN, "timeout              = var.timeout", "timeout              = 60", "module.function argument timeout"),
        # ...or the shared module ignores what it is given
        (SHARED_MAIN, "timeout                        = var.timeout", "timeout                        = 90", "aws_lambda_function.this timeout"),
    ],
)
def test_visibility_check_follows_timeout_into_shared_module(tree, rel, old, new, expect):
    edit(tree, rel, old, new)
    problems = contract.check_visibility_timeout(tree)
    assert any("below 6x" in p and expect in p for p in problems), problems


def test_visibility_check_fails_when_worker_timeout_unreadable(tree):
    edit(tree, WORKER_MAIN, "timeout              = var.timeout", "timeout              = var.timeout * 2")
    problems = contract.check_visibility_timeout(tree)
    assert any("cannot read a number" in p for p in problems), problems
    edit(tree, SHARED_MAIN, "timeout                        = var.timeout\n", "")
    problems = contract.check_visibility_timeout(tree)
    assert any("sets no timeout" in p for p in problems), problems


def test_visibility_check_uses_module_default_when_live_input_is_removed(tree):
    edit(tree, "infra/live/plt/command-queue/terragrunt.hcl", "visibility_timeout_seconds = 300", "")
    assert contract.check_visibility_timeout(tree) == []  # the default is 300 too
    edit(tree, "infra/modules/command-queue/variables.tf", "default     = 300", "default     = 200")
    problems = contract.check_visibility_timeout(tree)
    assert len([p for p in problems if "below 6x" in p]) == 2, problems  # module pair + live pair


# --- no wildcard account in ARNs ------------------------------------------------


@pytest.mark.parametrize(
    "rel, old",
    [
        (SHARED_MAIN, "${local.account_id}:parameter"),
        ("infra/live/plt/worker/terragrunt.hcl", "${include.root.locals.account_id}:table/baton-locks\""),
        ("infra/live/plt/router/terragrunt.hcl", "${include.root.locals.account_id}:baton-commands.fifo\""),
    ],
)
def test_arn_check_fails_on_wildcard_account(tree, rel, old):
    edit(tree, rel, old, old.replace(old.split("}")[0] + "}", "*"))
    problems = contract.check_arn_accounts(tree)
    assert any("wildcard account id" in p and rel in p for p in problems), problems


def test_arn_check_fails_on_literal_wildcard_and_empty_account(tree):
    with (tree / "infra/modules/worker-function/iam.tf").open("a") as fh:
        fh.write('\nlocals {\n  original_bot = "arn:aws:ssm:ca-central-1:*:parameter/laco/plt/aws/secrets/slack/*"\n')
        fh.write('  empty   = "arn:aws:ssm:ca-central-1::parameter/baton/plt/slack/bot-token"\n')
        fh.write('  bucket  = "arn:aws:s3:::baton-artifacts/*"\n}\n')
    problems = contract.check_arn_accounts(tree)
    assert len(problems) == 2, problems
    assert "wildcard account id" in problems[0] and "empty account id" in problems[1]


# --- one command config for both functions ----------------------------------

ROUTER_MAIN = "infra/modules/router-function/main.tf"
ROUTER_VARS = "infra/modules/router-function/variables.tf"
WORKER_UNIT = "infra/live/plt/worker/terragrunt.hcl"
ROUTER_UNIT = "infra/live/plt/router/terragrunt.hcl"
ROUTER_CONFIG_ENV = "var.config_path == null ? {} : { BATON_CONFIG = var.config_path },"


@pytest.mark.parametrize(
    "rel, old, new, expect",
    [
        # the router no longer gets BATON_CONFIG (it would use its built-in config)
        (ROUTER_MAIN, ROUTER_CONFIG_ENV, "{},", "router: infra/modules/router-function sets BATON_CONFIG to nothing"),
        # ...or gets it from another variable
        (ROUTER_MAIN, ROUTER_CONFIG_ENV, "{ BATON_CONFIG = var.router_config },", "var.router_config"),
        # the modules' defaults part
        (ROUTER_VARS, 'Must be the worker\'s: the router accepts completions only from the pipelines it names."\n  type        = string\n  default     = null', 'x"\n  type        = string\n  default     = "/var/task/router.toml"', "defaults differ"),
        # one live unit sets its own path
        (ROUTER_UNIT, "config_path = include.root.locals.config_path", 'config_path = "/var/task/router.toml"', "different command configs"),
        # one live unit drops the input: the module default (built-in) against the shared path
        (ROUTER_UNIT, "config_path = include.root.locals.config_path", "", "different command configs"),
        # extra_environment, merged last, would override BATON_CONFIG
        (WORKER_UNIT, "log_level               = \"info\"", 'log_level = "info"\n  extra_environment = { BATON_CONFIG = "/var/task/x.toml" }', "extra_environment sets BATON_CONFIG"),
    ],
)
def test_shared_config_check_fails_when_functions_can_read_different_configs(tree, rel, old, new, expect):
    edit(tree, rel, old, new)
    problems = contract.check_shared_config(tree)
    assert any(expect in p for p in problems), problems


def test_shared_config_check_fails_when_shared_module_drops_the_environment(tree):
    edit(tree, SHARED_MAIN, "merge(\n    var.environment,", "merge(\n    {},")
    problems = contract.check_shared_config(tree)
    assert any("does not pass var.environment" in p for p in problems), problems


# --- the reconciler schedule ------------------------------------------------------

RECONCILE_TF = "infra/modules/worker-function/reconcile.tf"


@pytest.mark.parametrize(
    "old, new, expect",
    [
        # more than invoking
        ('actions   = ["lambda:InvokeFunction"]', 'actions   = ["lambda:InvokeFunction", "lambda:UpdateFunctionCode"]', "grants lambda:UpdateFunctionCode"),
        ('actions   = ["lambda:InvokeFunction"]', 'actions   = ["lambda:*"]', "grants lambda:*"),
        # on more than the worker
        ("resources = [module.function.function_arn]", 'resources = ["*"]', "not only the worker function"),
        # another target, another input
        ("arn      = module.function.function_arn", 'arn      = "arn:aws:lambda:ca-central-1:${data.aws_caller_identity.current.account_id}:function:other"', "not the worker function"),
        ('jsonencode({ action = "reconcile" })', 'jsonencode({ action = "sweep" })', "target input"),
        ('jsonencode({ action = "reconcile" })', 'jsonencode({ action = "reconcile", dry_run = "true" })', "target input"),
        # someone else may assume the role
        ('identifiers = ["scheduler.amazonaws.com"]', 'identifiers = ["events.amazonaws.com"]', "only Service scheduler.amazonaws.com"),
        # the function's own role (which reads the table and the secrets)
        ("role_arn = aws_iam_role.reconcile_schedule.arn", "role_arn = module.function.role_arn", "not a role of this module"),
        # no grant at all
        ("role   = aws_iam_role.reconcile_schedule.id", "role   = aws_iam_role.elsewhere.id", "no aws_iam_role_policy"),
    ],
)
def test_schedule_check_fails_on_a_wider_or_wrong_schedule(tree, old, new, expect):
    edit(tree, RECONCILE_TF, old, new)
    problems = contract.check_reconcile_schedule(tree)
    assert any(expect in p for p in problems), problems


def test_schedule_check_fails_without_a_schedule(tree):
    (tree / RECONCILE_TF).unlink()
    problems = contract.check_reconcile_schedule(tree)
    assert any("expected one aws_scheduler_schedule" in p for p in problems), problems


def test_actions_check_counts_only_the_execution_role(tree):
    """The schedule's role grants the code nothing: a grant the worker's code
    needs does not count when only the schedule's role has it."""
    edit(tree, WORKER_IAM, '["dynamodb:GetItem", "dynamodb:UpdateItem"]', '["dynamodb:UpdateItem"]')
    edit(tree, RECONCILE_TF, "  statement {\n    sid       = \"InvokeWorker\"", '  statement {\n    actions   = ["dynamodb:GetItem"]\n    resources = ["*"]\n  }\n\n  statement {\n    sid       = \"InvokeWorker\"')
    problems, _ = contract.check_role_actions(tree, "worker")
    assert any("code calls dynamodb:GetItem" in p for p in problems), problems
    schedule_problems = contract.check_reconcile_schedule(tree)
    assert any("grants dynamodb:GetItem" in p for p in schedule_problems), schedule_problems


# --- SSM parameters named in the environment are granted -------------------


@pytest.mark.parametrize(
    "rel, old, new, expect",
    [
        (
            "infra/modules/worker-function/main.tf",
            "    var.azure_devops_pat_param == null ? [] : [var.azure_devops_pat_param],\n",
            "",
            "AZURE_DEVOPS_PAT_PARAM = var.azure_devops_pat_param",
        ),
        (
            "infra/modules/router-function/main.tf",
            "[var.slack_signing_secret_param, var.github_webhook_secret_param]",
            "[var.slack_signing_secret_param]",
            "GITHUB_WEBHOOK_SECRET_PARAM = var.github_webhook_secret_param",
        ),
        (
            "infra/modules/router-function/main.tf",
            "    var.slack_signing_secret_previous_param == null ? [] : [var.slack_signing_secret_previous_param],\n",
            "",
            "SLACK_SIGNING_SECRET_PREVIOUS_PARAM = var.slack_signing_secret_previous_param",
        ),
        (
            "infra/modules/api-function/main.tf",
            "ssm_parameter_names      = [var.tokens_param]",
            "ssm_parameter_names      = []",
            "BATON_API_TOKENS_PARAM = var.tokens_param",
        ),
    ],
)
def test_secret_check_fails_when_a_parameter_is_not_granted(tree, rel, old, new, expect):
    edit(tree, rel, old, new)
    problems = contract.check_secret_parameters(tree)
    assert any(expect in p for p in problems), problems


# --- alarms notify the topic; the router is capped -------------------------

QUEUE_MAIN = "infra/modules/command-queue/main.tf"
QUEUE_VARS = "infra/modules/command-queue/variables.tf"
WORKER_ALARMS = "infra/modules/worker-function/alarms.tf"
WORKER_VARS = "infra/modules/worker-function/variables.tf"


@pytest.mark.parametrize(
    "rel, old, new, expect",
    [
        # the DLQ alarm notifies only the extra list, not the topic
        (QUEUE_MAIN, "alarm_actions       = local.alarm_actions", "alarm_actions       = var.alarm_actions", "dlq_not_empty.alarm_actions does not include var.alarm_topic_arn"),
        # it tells the topic when it fires but not when it clears
        (QUEUE_MAIN, "ok_actions          = local.alarm_actions", "ok_actions          = []", "dlq_not_empty.ok_actions does not include var.alarm_topic_arn"),
        # the local drops the topic
        (QUEUE_MAIN, "concat(var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn], var.alarm_actions)", "var.alarm_actions", "dlq_not_empty.alarm_actions"),
        # the lost-lock alarm notifies nobody
        (WORKER_ALARMS, '  alarm_actions       = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]\n', '  alarm_actions       = []\n', "lost_lock.alarm_actions does not include var.alarm_topic_arn"),
        # the topic becomes required
        (WORKER_VARS, 'variable "alarm_topic_arn" {\n  description = "ARN of the SNS topic notified when the lost-lock alarm fires or clears. null = the alarm notifies nobody (it still shows in the console)."\n  type        = string\n  default     = null\n', 'variable "alarm_topic_arn" {\n  description = "x"\n  type        = string\n', "worker-function: no optional variable alarm_topic_arn"),
        (QUEUE_VARS, 'variable "alarm_topic_arn" {', 'variable "sns_topic" {', "command-queue: no optional variable alarm_topic_arn"),
        # the filter counts a message the worker does not write
        (WORKER_ALARMS, 'lost_lock_message = "took over an expired lock"', 'lost_lock_message = "lock lost"', "counts log message 'lock lost', which no warn!"),
        # the worker stops writing it
        ("crates/worker/src/main.rs", '"took over an expired lock"', '"took over a lapsed lock"', "counts log message 'took over an expired lock'"),
        # the router's URL is uncapped by default again
        (ROUTER_VARS, "  default     = 10\n", "  default     = -1\n", "reserved_concurrency defaults to -1"),
    ],
)
def test_alarm_check_fails_when_an_alarm_reaches_nobody_or_the_router_is_uncapped(tree, rel, old, new, expect):
    edit(tree, rel, old, new)
    problems = contract.check_alarms(tree)
    assert any(expect in p for p in problems), problems


def test_the_dashboard_charts_only_metrics_the_worker_emits():
    assert contract.check_dashboard_metrics(REPO) == []


def test_dashboard_check_fails_on_a_metric_nobody_emits(tmp_path):
    shutil.copytree(REPO / "infra", tmp_path / "infra")
    (tmp_path / "crates/worker/src").mkdir(parents=True)
    shutil.copy(REPO / contract.EMF_RS, tmp_path / contract.EMF_RS)
    edit(tmp_path, "infra/modules/dashboard/main.tf", '"LockHeld"', '"LockConflicts"')
    problems = contract.check_dashboard_metrics(tmp_path)
    assert any("LockConflicts" in p for p in problems), problems


def test_both_functions_must_be_told_the_same_workspaces():
    assert contract.check_allowed_teams(REPO) == []


@pytest.mark.parametrize(
    "rel, old, new, expect",
    [
        ("infra/modules/router-function/variables.tf", "  type        = list(string)\n\n  validation", "  type        = list(string)\n  default     = []\n\n  validation", "gives allowed_teams a default"),
        ("infra/modules/worker-function/main.tf", '{ BATON_ALLOWED_TEAMS = join(",", var.allowed_teams) },', "", "does not set BATON_ALLOWED_TEAMS"),
        ("infra/live/plt/router/terragrunt.hcl", "allowed_teams = include.root.locals.allowed_teams", 'allowed_teams = ["T0OTHER"]', "different workspaces"),
    ],
)
def test_workspace_check_fails(tree, rel, old, new, expect):
    edit(tree, rel, old, new)
    problems = contract.check_allowed_teams(tree)
    assert any(expect in p for p in problems), problems
