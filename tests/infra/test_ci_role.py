"""The CI role's policy, evaluated: what a pipeline's `baton` may and may not do.

infra/modules/ci-role is rendered to the IAM JSON AWS would receive
(iam_policy.py) and a maintained IAM policy evaluator,
@cloud-copilot/iam-simulate (pinned in tests/infra/iam-eval, installed by
run.sh with `npm ci`), decides requests against it offline. The requests
are the CLI's own: tests/infra/iam-eval/cli-requests.json holds every
DynamoDB request of the CLI's commands with the leading key and attribute
names IAM conditions see, recorded at the wire by
crates/cli/tests/iam_requests.rs (which fails when the file no longer
matches what the binary sends).

As in test_contract.py, each promise is a check returning problems, run on
the real module (no problems) and on mutated copies (the problem it exists
to catch).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import iam_policy
import infra_contract as contract

REPO = Path(__file__).resolve().parents[2]
EVAL_DIR = REPO / "tests/infra/iam-eval"
REQUESTS_FILE = EVAL_DIR / "cli-requests.json"
MODULE = "ci-role"
MAIN_TF = f"{contract.MODULES}/{MODULE}/main.tf"

ACCOUNT = "123456789012"
TABLE_ARN = f"arn:aws:dynamodb:ca-central-1:{ACCOUNT}:table/baton-locks"
INDEX_ARN = f"{TABLE_ARN}/index/active-locks"
PRINCIPAL = f"arn:aws:sts::{ACCOUNT}:assumed-role/baton-ci/github-run-1"
PREFIXES = ["router-", "api-"]
OUTSIDE_KEY = "billing-prod"


def variables(admin: bool) -> dict[str, Any]:
    return {
        "repositories": ["acme/router"],
        "table_arn": TABLE_ARN,
        "table_index_arns": [INDEX_ARN],
        "lock_key_prefixes": PREFIXES,
        "admin": admin,
    }


def evaluate(policies: list[dict], requests: list[dict]) -> list[str]:
    """The evaluator's decision for each request: Allowed, ImplicitlyDenied
    or ExplicitlyDenied. A request it refuses to evaluate fails the test."""
    node = shutil.which("node") or "/usr/bin/node"
    if not (EVAL_DIR / "node_modules/@cloud-copilot/iam-simulate").is_dir():
        pytest.fail(f"the evaluator is not installed: run `npm ci` in {EVAL_DIR} (tests/infra/run.sh does)")
    proc = subprocess.run(
        [node, "evaluate.mjs"],
        cwd=EVAL_DIR,
        input=json.dumps({"principal": PRINCIPAL, "account": ACCOUNT, "policies": policies, "requests": requests}),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    decisions = json.loads(proc.stdout)
    for request, decision in zip(requests, decisions):
        assert "error" not in decision, f"the evaluator refused {request}: {decision['error']}"
    return [d["result"] for d in decisions]


def table_request(operation: str, key: str, attributes: list[str], index: str | None = None) -> dict:
    """An IAM request for a DynamoDB operation as the CLI sends it."""
    return {
        "action": f"dynamodb:{operation}",
        "resource": f"{TABLE_ARN}/index/{index}" if index else TABLE_ARN,
        "context": {"dynamodb:LeadingKeys": [key], "dynamodb:Attributes": attributes},
    }


def cli_requests() -> list[tuple[str, dict]]:
    """(command, request) for every request recorded from the CLI."""
    recorded = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))
    out = []
    for command in recorded["commands"]:
        for r in command["requests"]:
            assert len(r["leading_keys"]) == 1, r
            out.append((command["command"], table_request(r["operation"], r["leading_keys"][0], r["attributes"], r["index"])))
    return out


def force_attribute(root: Path) -> str:
    consts, problems = contract.rust_constants(root, ("FORCE_UNLOCK_ATTRIBUTE",))
    assert problems == [], problems
    return consts["FORCE_UNLOCK_ATTRIBUTE"]


def check_ci_role(root: Path) -> list[str]:
    """What the CI role must allow and deny, decided by the evaluator."""
    force = force_attribute(root)
    problems: list[str] = []
    cases: list[tuple[bool, str, dict, str]] = []  # (admin, what, request, want)
    for admin in (False, True):
        for op in ("GetItem", "UpdateItem"):
            cases.append((admin, f"{op} on router-plt", table_request(op, "router-plt", ["lockKey", "status"]), "Allowed"))
            cases.append((admin, f"{op} on {OUTSIDE_KEY}", table_request(op, OUTSIDE_KEY, ["lockKey", "status"]), "ImplicitlyDenied"))
        cases.append((
            admin,
            f"UpdateItem naming {force} on router-plt",
            table_request("UpdateItem", "router-plt", ["lockKey", "status", force]),
            "Allowed" if admin else "ExplicitlyDenied",
        ))
        for command, request in cli_requests():
            names_force = force in request["context"]["dynamodb:Attributes"]
            want = "ExplicitlyDenied" if names_force and not admin else "Allowed"
            what = f"`baton {command}`: {request['action']} on {request['context']['dynamodb:LeadingKeys'][0]}"
            cases.append((admin, what, request, want))
            if request["resource"] == TABLE_ARN:
                outside = json.loads(json.dumps(request))
                outside["context"]["dynamodb:LeadingKeys"] = [OUTSIDE_KEY]
                want = "ExplicitlyDenied" if names_force and not admin else "ImplicitlyDenied"
                cases.append((admin, f"`baton {command}`: {request['action']} on {OUTSIDE_KEY}", outside, want))
    for admin in (False, True):
        policies = iam_policy.role_policies(root, MODULE, "ci", variables(admin))
        mine = [c for c in cases if c[0] == admin]
        got = evaluate(policies, [c[2] for c in mine])
        role = "admin role" if admin else "CI role"
        for (_, what, _, want), decision in zip(mine, got):
            if decision != want:
                problems.append(f"{role}: {what} is {decision}, expected {want}")
    return problems


def check_force_attribute(root: Path) -> list[str]:
    """The attribute the Deny names is the one force-unlock writes."""
    force = force_attribute(root)
    policies = iam_policy.role_policies(root, MODULE, "ci", variables(False))
    denied = {
        name
        for policy in policies
        for stmt in policy["Statement"]
        if stmt["Effect"] == "Deny"
        for name in stmt.get("Condition", {}).get("ForAnyValue:StringEquals", {}).get("dynamodb:Attributes", [])
    }
    if denied != {force}:
        return [f"{MAIN_TF}: the role's Deny names attributes {sorted(denied)}; force-unlock writes {force!r} (FORCE_UNLOCK_ATTRIBUTE in {contract.SCHEMA_RS})"]
    return []


# --------------------------------------------------------------------------
# The real module
# --------------------------------------------------------------------------


def test_the_cli_requests_file_covers_every_kind_of_write():
    """The recording has the writes the policy must tell apart."""
    commands = {c for c, _ in cli_requests()}
    assert {"acquire", "release", "renew", "force-unlock", "status", "list"} <= commands, commands
    force = force_attribute(REPO)
    naming = {c for c, r in cli_requests() if force in r["context"]["dynamodb:Attributes"]}
    assert naming == {"force-unlock"}, naming


def test_ci_role_allows_its_prefixes_and_never_a_force_unlock():
    problems = check_ci_role(REPO)
    assert problems == [], "\n".join(problems)


def test_deny_names_the_attribute_force_unlock_writes():
    assert check_force_attribute(REPO) == []


@pytest.mark.parametrize(
    "prefixes, accepted",
    [
        (["router-", "api-"], True),
        (["deploy-api-"], True),
        ([], False),
        (["*"], False),
        ([""], False),
        (["router-", "*"], False),
        (["deploy-*-prod"], False),
        (["api?"], False),
    ],
)
def test_lock_key_prefixes_are_validated(prefixes, accepted):
    assert iam_policy.validates(REPO, MODULE, "lock_key_prefixes", prefixes) is accepted


# --------------------------------------------------------------------------
# Mutated copies: each check catches what it exists for
# --------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "infra", tmp_path / "infra", ignore=shutil.ignore_patterns(".terragrunt-cache", ".terraform"))
    (tmp_path / contract.SCHEMA_RS).parent.mkdir(parents=True)
    shutil.copy(REPO / contract.SCHEMA_RS, tmp_path / contract.SCHEMA_RS)
    return tmp_path


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}: the mutation would test nothing"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_copy_has_no_problems(tree):
    assert check_ci_role(tree) == []
    assert check_force_attribute(tree) == []


DENY_BLOCK = 'dynamic "statement" {\n    for_each = var.admin ? [] : ["no-force-unlock"]'


@pytest.mark.parametrize(
    "old, new, expect",
    [
        # the deny dropped: a CI role's force-unlock goes through
        (DENY_BLOCK, 'dynamic "statement" {\n    for_each = []', "CI role: `baton force-unlock`: dynamodb:UpdateItem on router-plt is Allowed, expected ExplicitlyDenied"),
        # the deny kept for admins only, the wrong way round
        ('var.admin ? [] : ["no-force-unlock"]', 'var.admin ? ["no-force-unlock"] : []', "admin role: `baton force-unlock`"),
        # the deny on another attribute
        ("values   = [local.force_unlock_attribute]", 'values   = ["forced"]', "CI role: `baton force-unlock`: dynamodb:UpdateItem on router-plt is Allowed"),
        # the prefix widened to every key
        ('"${prefix}*"', '"*"', f"CI role: GetItem on {OUTSIDE_KEY} is Allowed, expected ImplicitlyDenied"),
        # a StringLike that no key matches: the role can do nothing
        ('"${prefix}*"', '"${prefix}"', "CI role: `baton acquire`: dynamodb:UpdateItem on router-plt is ImplicitlyDenied, expected Allowed"),
        # the Query statement lost: `list` fails
        ('actions   = ["dynamodb:Query"]', 'actions   = ["dynamodb:Scan"]', "`baton list`: dynamodb:Query on IN_PROGRESS is ImplicitlyDenied"),
    ],
)
def test_ci_role_check_fails_on_a_wider_or_broken_policy(tree, old, new, expect):
    edit(tree, MAIN_TF, old, new)
    problems = check_ci_role(tree)
    assert any(expect in p for p in problems), problems


def test_force_attribute_check_fails_when_names_part(tree):
    edit(tree, MAIN_TF, 'force_unlock_attribute = "forcedLockId"', 'force_unlock_attribute = "forced"')
    problems = check_force_attribute(tree)
    assert problems and "'forcedLockId'" in problems[0], problems
    edit(tree, MAIN_TF, 'force_unlock_attribute = "forced"', 'force_unlock_attribute = "forcedLockId"')
    edit(tree, contract.SCHEMA_RS, 'FORCE_UNLOCK_ATTRIBUTE: &str = "forcedLockId"', 'FORCE_UNLOCK_ATTRIBUTE: &str = "forcedBy"')
    problems = check_force_attribute(tree)
    assert problems and "'forcedBy'" in problems[0], problems


def test_rendering_refuses_what_it_cannot_read(tree):
    edit(tree, MAIN_TF, "values   = local.lock_key_patterns", "values   = formatlist(\"%s*\", var.lock_key_prefixes)")
    with pytest.raises(iam_policy.Unrenderable, match="formatlist"):
        iam_policy.role_policies(tree, MODULE, "ci", variables(False))


def test_the_cli_caller_lookup_is_a_known_sdk_call():
    """The CLI's sts:GetCallerIdentity is read like every SDK call, and needs
    no grant in the role (STS answers it whatever a policy says)."""
    calls, problems = contract.sdk_calls_in(REPO, [REPO / "crates/cli/src/caller.rs"])
    assert problems == []
    assert [c.action for c in calls] == ["sts:GetCallerIdentity"]
