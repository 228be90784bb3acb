"""Contract checks between baton's infrastructure (infra/) and its Rust code.

Every check is a function ``check_*(root) -> list[str]`` taking the repository
root and returning the problems it found (empty list = infra and code agree).
test_contract.py runs each one on the real tree and on mutated copies, to
prove that each check can fail.

HCL is read with python-hcl2. Rust is read by tests/infra/sdk-calls, a small
program of its own that parses each source file with syn (the parser Rust's
own macros use) and prints, as JSON, the zero-argument method calls that may
be AWS SDK operations (`client.get_item()` and the like: an SDK client's
operation methods take no argument and return a fluent builder), the
`Put::builder()`-style calls of transaction items and the `&str` constants.
Which of those calls are AWS requests, and which IAM action each needs, is
decided here (SDK_CALLS). A parser rather than patterns over the text,
because the text has comments, string and raw string literals, char literals
next to lifetimes, `#[cfg(test)]` items and out-of-line test modules, builders
held in variables and sent later, and calls inside macros: a parser sees them
as the compiler does, and a file it cannot parse is a problem, not a silent
miss. Rather than markers at each call site (`// iam: dynamodb:UpdateItem`),
because a marker is a second copy of what the call already says, and checking
it both ways would need this same parser to find the unmarked calls.

The lister is built with cargo the first time a check needs it (its Cargo.lock
pins syn; it is a workspace of its own, outside the Lambda crates' builds).
Nothing is planned, applied or sent to AWS.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import hcl2
from hcl2.utils import SerializationOptions

# --------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------

MODULES = "infra/modules"
LIVE = "infra/live"
TABLE_MODULE = "lock-table"
QUEUE_MODULE = "command-queue"
WORKER_MODULE = "worker-function"
ROUTER_MODULE = "router-function"
HISTORY_MODULE = "history-function"
API_MODULE = "api-function"

SCHEMA_RS = "crates/lock/src/schema.rs"
SCHEMA_CONSTANTS = (
    "TABLE_PARTITION_KEY",
    "TTL_ATTRIBUTE",
    "ACTIVE_INDEX_NAME",
    "ACTIVE_INDEX_PARTITION_KEY",
    # The history table's (module `history` of schema.rs).
    "PARTITION_KEY",
    "SORT_KEY",
    "TIME_INDEX_NAME",
    "TIME_INDEX_PARTITION_KEY",
    "TIME_INDEX_SORT_KEY",
)

# Deployed Lambda roles: the crate whose binary runs, and the module whose IAM
# policy it gets, read together with the local modules it calls (the role, its
# policy and the function are in lambda-function, which both call; their own
# statements reach that policy as documents). The crates it links are found
# from Cargo.toml (path dependencies inside the workspace, not
# dev-dependencies).

ROLES = {
    "worker": {"crate": "crates/worker", "module": WORKER_MODULE, "event_source": "sqs"},
    "router": {"crate": "crates/router", "module": ROUTER_MODULE},
    # The history consumer links the lock crate only for the pure rule that
    # turns a change into an entry (history.rs, no SDK call) and the runtime
    # crate only for the SDK config and logging: its scan is its own src/
    # plus exactly those files, so it is not granted the lock operations or
    # the secrets the other functions need.
    "history": {
        "crate": "crates/history",
        "module": HISTORY_MODULE,
        "event_source": "dynamodb",
        "linked_files": [
            "crates/lock/src/history.rs",
            "crates/runtime/src/sdk.rs",
            "crates/runtime/src/logging.rs",
            "crates/runtime/src/settings.rs",
        ],
    },
    "api": {"crate": "crates/api", "module": API_MODULE},
}
# The functions that read the command config (the shared-config check).
CONFIG_ROLES = ("worker", "router")
# Never deployed to Lambda: the CLI, and the test helpers.
NOT_DEPLOYED_CRATES = {"crates/cli", "crates/testkit"}
# Source files no Lambda runs: the `table create` admin helper of the lock
# crate (CreateTable, UpdateTimeToLive, DescribeTable). Operators run it with
# their own credentials, or let terraform create the table.
EXCLUDED_SOURCES = {"crates/lock/src/table.rs", "crates/history/src/follow.rs"}

# Services whose actions must match the code exactly. (logs and xray are the
# Lambda runtime's own needs; kms:Decrypt follows from the SSM parameters.)
COMPARED_SERVICES = ("dynamodb", "sqs", "ssm")

# Actions the Lambda service itself performs with the function's role for an
# SQS event source mapping (AWSLambdaSQSQueueExecutionRole grants the same).
# ChangeMessageVisibility is not among them: the poller never calls it, so it
# is granted only if the code does.
EVENT_SOURCE_SQS_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
# What Lambda does with the role for a DynamoDB stream event source
# (AWSLambdaDynamoDBExecutionRole grants the same).
EVENT_SOURCE_STREAM_ACTIONS = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}
EVENT_SOURCE_ACTIONS = {"sqs": EVENT_SOURCE_SQS_ACTIONS, "dynamodb": EVENT_SOURCE_STREAM_ACTIONS}

# AWS SDK for Rust fluent operations -> IAM actions. A call the lister finds
# sent like an SDK request (`x.op()...send()`) whose name is not here is a
# problem: its IAM action would otherwise go unchecked.
SDK_CALLS = {
    # DynamoDB
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
    "scan": "dynamodb:Scan",
    "batch_get_item": "dynamodb:BatchGetItem",
    "batch_write_item": "dynamodb:BatchWriteItem",
    "transact_get_items": "dynamodb:GetItem",
    "transact_write_items": None,  # see TRANSACT_ITEM_TYPES
    "create_table": "dynamodb:CreateTable",
    "update_time_to_live": "dynamodb:UpdateTimeToLive",
    "describe_table": "dynamodb:DescribeTable",
    "describe_time_to_live": "dynamodb:DescribeTimeToLive",
    # SQS
    "send_message": "sqs:SendMessage",
    "send_message_batch": "sqs:SendMessage",
    "receive_message": "sqs:ReceiveMessage",
    "delete_message": "sqs:DeleteMessage",
    "delete_message_batch": "sqs:DeleteMessage",
    "change_message_visibility": "sqs:ChangeMessageVisibility",
    "change_message_visibility_batch": "sqs:ChangeMessageVisibility",
    "get_queue_attributes": "sqs:GetQueueAttributes",
    "get_queue_url": "sqs:GetQueueUrl",
    # STS: the CLI asks who it runs as (crates/cli/src/caller.rs). IAM never
    # needs to grant it: GetCallerIdentity works whatever a policy denies.
    "get_caller_identity": "sts:GetCallerIdentity",
    # SSM
    "get_parameter": "ssm:GetParameter",
    "get_parameters": "ssm:GetParameters",
    "get_parameters_by_path": "ssm:GetParametersByPath",
}
# Names common enough outside the SDK (Uri::query(), iterator scans) that a
# call only counts when its builder is sent (`.send()` or `.into_paginator()`,
# also after being kept in a variable) or set up with one of these DynamoDB
# request methods in the same expression (a builder handed to a caller).
AMBIGUOUS_CALLS = {"query", "scan"}
SDK_BUILDER_METHODS = {
    "send",
    "into_paginator",
    "table_name",
    "index_name",
    "key_condition_expression",
    "filter_expression",
    "exclusive_start_key",
    "segment",
    "total_segments",
}
# IAM has no TransactWriteItems action: each item of the transaction is
# authorized as its own action. The item kinds are found from the SDK types the
# code builds.
TRANSACT_ITEM_TYPES = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
# A call on a line carrying this marker is not an AWS call (escape hatch for
# a same-named method of another client; say why next to it).
NOT_AWS_MARKER = "iam-contract: not-aws"


# --------------------------------------------------------------------------
# HCL helpers
# --------------------------------------------------------------------------

_HCL_OPTIONS = SerializationOptions(with_comments=False)


def load_hcl(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        return hcl2.load(fh, serialization_options=_HCL_OPTIONS)


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals: '"x"' -> 'x'."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def module_files(root: Path, module: str) -> list[Path]:
    return sorted((root / MODULES / module).glob("*.tf"))


def module_blocks(root: Path, module: str, kind: str) -> dict[tuple[str, str], dict]:
    """{(type, name): body} of the module's `resource` or `data` blocks."""
    out: dict[tuple[str, str], dict] = {}
    for path in module_files(root, module):
        for entry in load_hcl(path).get(kind, []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    out[(unquote(rtype), unquote(name))] = body
    return out


def module_variable_defaults(root: Path, module: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in module_files(root, module):
        for entry in load_hcl(path).get("variable", []):
            for name, body in entry.items():
                if "default" in body:
                    out[unquote(name)] = unquote(body["default"])
    return out


@dataclass
class ModuleCall:
    """A module as instantiated: the role's own module (parent None) or a
    local module it calls, with the arguments of that `module` block."""

    module: str
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    parent: "ModuleCall | None" = None

    def label(self) -> str:
        if self.parent is None:
            return f"{MODULES}/{self.module}"
        return f"{self.parent.label()} module.{self.name} ({self.module})"


def module_tree(root: Path, module: str) -> tuple[list[ModuleCall], list[str]]:
    """The module and every module it calls, transitively (local sources only:
    anything else cannot be read here, so it is a problem)."""
    calls, problems = [], []
    todo = [ModuleCall(module)]
    while todo:
        call = todo.pop(0)
        calls.append(call)
        for path in module_files(root, call.module):
            for entry in load_hcl(path).get("module", []):
                for name, body in entry.items():
                    name = unquote(name)
                    source = str(unquote(body.get("source", "")))
                    target = (root / MODULES / call.module / source).resolve()
                    if not source.startswith(("./", "../")) or target.parent != (root / MODULES).resolve():
                        problems.append(
                            f"{call.label()}: module.{name} has source {source!r}, not a local module "
                            f"under {MODULES}; what it creates cannot be checked"
                        )
                        continue
                    ancestors, up = [], call
                    while up:
                        ancestors.append(up.module)
                        up = up.parent
                    if target.name in ancestors:
                        problems.append(f"{call.label()}: module.{name} calls {target.name} recursively")
                        continue
                    args = {k: v for k, v in body.items() if k not in ("source", "__is_block__")}
                    todo.append(ModuleCall(target.name, name, args, call))
    return calls, problems


def tree_blocks(calls: list[ModuleCall], root: Path, kind: str) -> list[tuple[ModuleCall, str, str, dict]]:
    """(call, type, name, body) of the `resource` or `data` blocks of every module in a tree."""
    return [
        (call, rtype, name, body)
        for call in calls
        for (rtype, name), body in module_blocks(root, call.module, kind).items()
    ]


_VAR_REF = re.compile(r"\$\{var\.([A-Za-z0-9_]+)\}")


def resolve_in_tree(root: Path, value: Any, call: ModuleCall) -> tuple[Any, ModuleCall, str]:
    """Follow a bare `${var.x}` up through the module calls that set it.

    Returns (value, call, where): the value as written in `call`'s module (a
    literal, another expression, or `${var.x}` of the outermost module), and
    where it was written.
    """
    where = f"{call.label()}"
    while True:
        m = _VAR_REF.fullmatch(str(unquote(value))) if isinstance(unquote(value), str) else None
        if not m or call.parent is None:
            return value, call, where
        var = m.group(1)
        if var in call.args:
            value = call.args[var]
            where = f"{call.parent.label()}: module.{call.name} argument {var}"
            call = call.parent
        else:
            defaults = module_variable_defaults(root, call.module)
            return defaults.get(var), call, f"{MODULES}/{call.module} default of {var}"


@dataclass
class Unit:
    """A terragrunt unit under infra/live."""

    path: Path
    module: str | None
    inputs: dict[str, Any]
    dependencies: dict[str, Path] = field(default_factory=dict)

    def label(self, root: Path) -> str:
        return str(self.path.relative_to(root))


_SOURCE_RE = re.compile(r"modules//?([A-Za-z0-9_.-]+)")


def live_units(root: Path) -> list[Unit]:
    units = []
    live = root / LIVE
    for path in sorted(live.rglob("terragrunt.hcl")):
        if path.parent == live:  # the root configuration, not a unit
            continue
        doc = load_hcl(path)
        module = None
        for block in doc.get("terraform", []):
            match = _SOURCE_RE.search(str(unquote(block.get("source", ""))))
            if match:
                module = match.group(1)
        deps = {}
        for entry in doc.get("dependency", []):
            for name, body in entry.items():
                config_path = unquote(body.get("config_path", ""))
                deps[unquote(name)] = (path.parent / config_path).resolve()
        units.append(Unit(path.parent.resolve(), module, doc.get("inputs", {}) or {}, deps))
    return units


def unit_value(root: Path, unit: Unit, var: str) -> tuple[Any, str]:
    """Value a unit deploys for a module variable: its input, else the default."""
    if var in unit.inputs:
        return unquote(unit.inputs[var]), f"{unit.label(root)}/terragrunt.hcl inputs.{var}"
    defaults = module_variable_defaults(root, unit.module)
    return defaults.get(var), f"{MODULES}/{unit.module}/variables.tf default of {var}"


def resolve(value: Any, variables: dict[str, Any]) -> Any:
    """Resolve a literal or a bare `${var.x}` against known variable values."""
    value = unquote(value)
    if is_expression(value):
        m = re.fullmatch(r"\$\{var\.([A-Za-z0-9_]+)\}", value)
        if m and m.group(1) in variables:
            return unquote(variables[m.group(1)])
    return value


def as_number(value: Any) -> float | None:
    value = unquote(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    return None


# --------------------------------------------------------------------------
# Rust helpers
# --------------------------------------------------------------------------

SDK_LISTER = Path(__file__).resolve().parent / "sdk-calls"


@functools.cache
def _lister() -> str:
    """The sdk-calls executable, built (or found up to date) once per process."""
    cargo = os.environ.get("CARGO") or shutil.which("cargo") or str(Path.home() / ".cargo/bin/cargo")
    command = [
        cargo, "build", "--quiet", "--locked",
        "--manifest-path", str(SDK_LISTER / "Cargo.toml"),
        "--message-format=json-render-diagnostics",
    ]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise RuntimeError(f"cargo is needed to build {SDK_LISTER} ({e})") from e
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr}")
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            return message["executable"]
    raise RuntimeError(f"{' '.join(command)} named no executable")


def read_rust(root: Path, files: list[Path]) -> tuple[list[dict], list[str]]:
    """What sdk-calls reports for each file (same order), and a problem for
    each file it could not parse: its calls would be missing."""
    if not files:
        return [], []
    command = [
        _lister(),
        "--methods", ",".join(sorted(SDK_CALLS)),
        "--builders", ",".join(sorted(TRANSACT_ITEM_TYPES)),
        "--", *map(str, files),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"sdk-calls failed ({proc.returncode}):\n{proc.stderr}")
    reports = json.loads(proc.stdout)["files"]
    problems = [
        f"{path.relative_to(root)}: cannot be parsed as Rust ({report['error']}): what it calls and defines is unknown"
        for path, report in zip(files, reports)
        if report["error"]
    ]
    return reports, problems


def rust_constants(root: Path, names: Iterable[str] = SCHEMA_CONSTANTS) -> tuple[dict[str, str], list[str]]:
    """The `pub const NAME: &str = "..."` values of schema.rs for `names`."""
    names = tuple(names)
    path = root / SCHEMA_RS
    if not path.is_file():
        return {}, [f"{SCHEMA_RS} is missing: it must define {', '.join(names)}"]
    reports, problems = read_rust(root, [path])
    if problems:
        return {}, problems
    consts = {}
    for const in reports[0]["consts"]:
        consts.setdefault(const["name"], const)
    found = {}
    for name in names:
        const = consts.get(name)
        if const and const["public"] and const["value"] is not None:
            found[name] = const["value"]
        else:
            problems.append(f"{SCHEMA_RS}: no `pub const {name}: &str = \"...\";`")
    return found, problems


@dataclass
class Call:
    action: str
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def sdk_calls_in(root: Path, files: Iterable[Path]) -> tuple[list[Call], list[str]]:
    files = list(files)
    reports, problems = read_rust(root, files)
    calls: list[Call] = []
    transact_sites: list[Call] = []
    item_types_seen: set[str] = set()
    for path, report in zip(files, reports):
        if report["error"] or report["test_only"]:
            continue
        rel = str(path.relative_to(root))
        lines = path.read_text(encoding="utf-8").splitlines()
        for call in report["calls"]:
            name, line = call["method"], call["line"]
            if NOT_AWS_MARKER in lines[line - 1]:
                continue
            if name not in SDK_CALLS:  # listed because its builder is sent
                problems.append(
                    f"{rel}:{line}: {call['receiver']}.{name}() is sent like an AWS SDK request but "
                    f"{name} is not in SDK_CALLS: add the IAM action it needs there (or, if it is "
                    f"no AWS call, mark the line `// {NOT_AWS_MARKER}` and say why)"
                )
                continue
            if name in AMBIGUOUS_CALLS and not (call["sent"] or SDK_BUILDER_METHODS & set(call["then"])):
                continue
            if SDK_CALLS[name] is None:
                transact_sites.append(Call("dynamodb:TransactWriteItems", rel, line))
            else:
                calls.append(Call(SDK_CALLS[name], rel, line))
        item_types_seen |= {b["type"] for b in report["builders"]}
    if transact_sites:
        if not item_types_seen:
            problems.append(
                f"{transact_sites[0].where()}: transact_write_items() but no Put/Update/Delete/"
                "ConditionCheck ::builder() found: cannot tell which item actions it needs"
            )
        for site in transact_sites:
            for type_name in sorted(item_types_seen):
                calls.append(Call(TRANSACT_ITEM_TYPES[type_name], site.file, site.line))
    return calls, problems


def _package_dirs(root: Path) -> dict[str, Path]:
    """Cargo package name -> crate dir, for every crate under crates/."""
    out = {}
    for manifest in sorted((root / "crates").glob("*/Cargo.toml")):
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        name = data.get("package", {}).get("name")
        if name:
            out[name] = manifest.parent.resolve()
    return out


def _path_dependencies(root: Path, crate_dir: Path) -> list[Path]:
    """Workspace crates a crate links (normal deps, all targets; not dev/build)."""
    data = tomllib.loads((crate_dir / "Cargo.toml").read_text(encoding="utf-8"))
    workspace_path = root / "Cargo.toml"
    ws_deps = {}
    if workspace_path.is_file():
        ws_deps = tomllib.loads(workspace_path.read_text(encoding="utf-8")).get("workspace", {}).get("dependencies", {})
    packages = _package_dirs(root)
    tables = [data.get("dependencies", {})]
    tables += [t.get("dependencies", {}) for t in data.get("target", {}).values()]
    found = []
    for table in tables:
        for key, spec in table.items():
            spec = spec if isinstance(spec, dict) else {}
            package = spec.get("package", key)
            if spec.get("workspace"):
                ws = ws_deps.get(key, {})
                ws = ws if isinstance(ws, dict) else {}
                package = ws.get("package", package)
                if "path" in ws:
                    found.append((root / ws["path"]).resolve())
                    continue
            if "path" in spec:
                found.append((crate_dir / spec["path"]).resolve())
            elif package in packages:
                found.append(packages[package])
    return found


def role_crates(root: Path, crate: str) -> list[Path]:
    """The crate and every workspace crate it links, transitively."""
    start = (root / crate).resolve()
    seen, todo = [], [start]
    not_deployed = {(root / c).resolve() for c in NOT_DEPLOYED_CRATES}
    while todo:
        crate_dir = todo.pop()
        if crate_dir in seen or crate_dir in not_deployed or not (crate_dir / "Cargo.toml").is_file():
            continue
        seen.append(crate_dir)
        todo.extend(_path_dependencies(root, crate_dir))
    return seen


def deployed_sources(root: Path, crates: Iterable[Path]) -> list[Path]:
    """src/**/*.rs of the crates (tests/, benches/, examples/ are not under
    src; sdk-calls leaves out the test-only modules among these files)."""
    excluded = {(root / f).resolve() for f in EXCLUDED_SOURCES}
    return [
        path
        for crate_dir in crates
        for path in sorted((crate_dir / "src").rglob("*.rs"))
        if path.resolve() not in excluded
    ]


# --------------------------------------------------------------------------
# IAM helpers
# --------------------------------------------------------------------------


def _statements(body: dict) -> list[dict]:
    stmts = list(body.get("statement", []))
    for dyn in body.get("dynamic", []):
        for label, dyn_body in dyn.items():
            if unquote(label) == "statement":
                stmts.extend(dyn_body.get("content", []))
    return stmts


_DOC_JSON = re.compile(r"\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json\}")
# Arguments of aws_iam_policy_document that merge other documents into it.
_MERGED_DOCUMENTS = ("source_policy_documents", "override_policy_documents")


def _document_statements(
    root: Path, call: ModuleCall, doc: str, seen: set[tuple[int, str]]
) -> tuple[list[tuple[dict, ModuleCall]], list[str]]:
    """Statements of data.aws_iam_policy_document.<doc> in `call`'s module,
    with those of the documents merged into it (source/override documents,
    followed through module arguments to the module that defines them)."""
    docs = module_blocks(root, call.module, "data")
    where = f"{call.label()}: data.aws_iam_policy_document.{doc}"
    if ("aws_iam_policy_document", doc) not in docs:
        return [], [f"{where} does not exist; cannot read its actions"]
    if (id(call), doc) in seen:
        return [], [f"{where} merges itself"]
    seen = seen | {(id(call), doc)}
    body = docs[("aws_iam_policy_document", doc)]
    out = [(stmt, call) for stmt in _statements(body)]
    problems = []
    for key in _MERGED_DOCUMENTS:
        if key not in body:
            continue
        value, ctx, origin = resolve_in_tree(root, body[key], call)
        if value is None:  # an unset optional argument: nothing merged
            continue
        if not isinstance(value, list):
            problems.append(f"{where}: {key} is {value!r} ({origin}), not a list of policy documents; cannot read its actions")
            continue
        for item in value:
            item, item_ctx, item_origin = resolve_in_tree(root, item, ctx)
            m = _DOC_JSON.fullmatch(str(unquote(item)))
            if not m:
                problems.append(
                    f"{where}: {key} holds {item!r} ({item_origin}), not a "
                    "data.aws_iam_policy_document's json; cannot read its actions"
                )
                continue
            more, more_problems = _document_statements(root, item_ctx, m.group(1), seen)
            out += more
            problems += more_problems
    return out, problems


_ROLE_REF = re.compile(r"\$\{aws_iam_role\.([A-Za-z0-9_-]+)\.(arn|id|name)\}")


def function_role(root: Path, calls: list[ModuleCall]) -> tuple[ModuleCall, str] | None:
    """(call, role name) of the execution role of the tree's one aws_lambda_function."""
    functions = [(c, b) for c, t, _n, b in tree_blocks(calls, root, "resource") if t == "aws_lambda_function"]
    if len(functions) != 1:
        return None
    call, body = functions[0]
    m = _ROLE_REF.fullmatch(str(unquote(body.get("role", ""))))
    return (call, m.group(1)) if m else None


def _other_role(call: ModuleCall, policy: dict, execution_role: tuple[ModuleCall, str] | None) -> bool:
    """Whether a role policy is attached to a role of this tree other than the execution role."""
    m = _ROLE_REF.fullmatch(str(unquote(policy.get("role", ""))))
    if not m or execution_role is None:
        return False
    role_call, role_name = execution_role
    return not (call is role_call and m.group(1) == role_name)


def granted_actions(root: Path, module: str) -> tuple[dict[str, list[str]], list[str]]:
    """{action: [statement sids]} allowed by the role policies of a module and
    of the local modules it calls (the role and its policy may live in one of
    those, with statements passed in as documents).

    Only the function's execution role counts: a policy attached to another
    role of the tree (the reconciler schedule's, which only invokes the
    function) grants the code nothing and is checked on its own. A policy
    whose role cannot be told is counted, so nothing is left out."""
    calls, problems = module_tree(root, module)
    resources = tree_blocks(calls, root, "resource")
    granted: dict[str, list[str]] = {}
    execution_role = function_role(root, calls)
    policies = [
        (call, name, body)
        for call, rtype, name, body in resources
        if rtype == "aws_iam_role_policy" and not _other_role(call, body, execution_role)
    ]
    if not policies:
        problems.append(f"{MODULES}/{module}: no aws_iam_role_policy found (in it or the modules it calls)")
    for call, rtype, name, _body in resources:
        if rtype in ("aws_iam_role_policy_attachment", "aws_iam_policy_attachment") or (
            rtype == "aws_iam_role" and "managed_policy_arns" in _body
        ):
            problems.append(
                f"{call.label()}: {rtype}.{name} attaches a managed policy; "
                "its actions cannot be checked against the code (use the inline policy)"
            )
    for call, name, body in policies:
        ref = unquote(body.get("policy", ""))
        m = _DOC_JSON.fullmatch(str(ref))
        if not m:
            problems.append(
                f"{call.label()}: aws_iam_role_policy.{name}.policy is not a "
                "data.aws_iam_policy_document of this module; cannot read its actions"
            )
            continue
        statements, doc_problems = _document_statements(root, call, m.group(1), set())
        problems += doc_problems
        for stmt, stmt_call in statements:
            if unquote(stmt.get("effect", "Allow")) != "Allow":
                continue
            sid = unquote(stmt.get("sid", "?"))
            where = f"{stmt_call.label()}: statement {sid}"
            actions = stmt.get("actions", [])
            if not isinstance(actions, list):
                problems.append(f"{where}: actions is not a literal list")
                continue
            for action in actions:
                action = unquote(action)
                if not isinstance(action, str) or is_expression(action):
                    problems.append(f"{where}: action {action!r} is not a literal")
                    continue
                granted.setdefault(action, []).append(f"{sid} in {stmt_call.module}")
    return granted, problems


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def check_table_schema(root: Path) -> list[str]:
    """Table key, TTL attribute and index names == the Rust constants."""
    consts, problems = rust_constants(root)
    if problems:
        return problems
    tables = {n: b for (t, n), b in module_blocks(root, TABLE_MODULE, "resource").items() if t == "aws_dynamodb_table"}
    if set(tables) != {"locks", "history"}:
        return [f"{MODULES}/{TABLE_MODULE}: expected aws_dynamodb_table.locks and .history, found {sorted(tables)}"]
    table = tables["locks"]
    where = f"{MODULES}/{TABLE_MODULE}"

    contexts = [("module defaults", module_variable_defaults(root, TABLE_MODULE))]
    for unit in live_units(root):
        if unit.module == TABLE_MODULE:
            merged = dict(contexts[0][1])
            merged.update({k: unquote(v) for k, v in unit.inputs.items()})
            contexts.append((unit.label(root), merged))

    for label, variables in contexts:
        def val(v: Any) -> Any:
            return resolve(v, variables)

        def expect(what: str, got: Any, want: str) -> None:
            if got != want:
                problems.append(f"{where} ({label}): {what} is {got!r}, the code's constant is {want!r}")

        pk = consts["TABLE_PARTITION_KEY"]
        expect("hash_key (TABLE_PARTITION_KEY)", val(table.get("hash_key")), pk)
        if "range_key" in table:
            problems.append(f"{where} ({label}): the table has a range_key {val(table['range_key'])!r}; the code uses no sort key")
        attributes = {val(a.get("name")): val(a.get("type")) for a in table.get("attribute", [])}
        ttl = (table.get("ttl") or [{}])[0]
        expect("ttl.attribute_name (TTL_ATTRIBUTE)", val(ttl.get("attribute_name")), consts["TTL_ATTRIBUTE"])
        if val(ttl.get("enabled")) is not True:
            problems.append(f"{where} ({label}): TTL is not enabled")
        gsis = {val(g.get("name")): g for g in table.get("global_secondary_index", [])}
        index_name = consts["ACTIVE_INDEX_NAME"]
        if index_name not in gsis:
            problems.append(
                f"{where} ({label}): no global_secondary_index named {index_name!r} "
                f"(ACTIVE_INDEX_NAME); found {sorted(map(str, gsis))}"
            )
        else:
            gsi = gsis[index_name]
            expect(f"index {index_name} hash_key (ACTIVE_INDEX_PARTITION_KEY)", val(gsi.get("hash_key")), consts["ACTIVE_INDEX_PARTITION_KEY"])
            expect(f"index {index_name} range_key (TABLE_PARTITION_KEY)", val(gsi.get("range_key")), pk)
            expect(f"index {index_name} projection_type", val(gsi.get("projection_type")), "ALL")
        for key in {pk, consts["ACTIVE_INDEX_PARTITION_KEY"]}:
            if attributes.get(key) != "S":
                problems.append(f"{where} ({label}): attribute {key!r} must be defined with type \"S\" (found {attributes.get(key)!r})")
        if val(table.get("stream_enabled")) is not True or val(table.get("stream_view_type")) != "NEW_AND_OLD_IMAGES":
            problems.append(f"{where} ({label}): the lock table's stream must be on with NEW_AND_OLD_IMAGES (the history is derived from it)")

        history = tables["history"]
        expect("history hash_key (PARTITION_KEY)", val(history.get("hash_key")), consts["PARTITION_KEY"])
        expect("history range_key (SORT_KEY)", val(history.get("range_key")), consts["SORT_KEY"])
        history_ttl = (history.get("ttl") or [{}])[0]
        expect("history ttl.attribute_name (TTL_ATTRIBUTE)", val(history_ttl.get("attribute_name")), consts["TTL_ATTRIBUTE"])
        history_gsis = {val(g.get("name")): g for g in history.get("global_secondary_index", [])}
        day_index = history_gsis.get(consts["TIME_INDEX_NAME"])
        if day_index is None:
            problems.append(f"{where} ({label}): the history table has no index {consts['TIME_INDEX_NAME']!r} (TIME_INDEX_NAME)")
        else:
            expect("history index hash_key (TIME_INDEX_PARTITION_KEY)", val(day_index.get("hash_key")), consts["TIME_INDEX_PARTITION_KEY"])
            expect("history index range_key (TIME_INDEX_SORT_KEY)", val(day_index.get("range_key")), consts["TIME_INDEX_SORT_KEY"])
    return problems


# Every deployable handler uses the Lambda runtime crate; a crate without it
# is still a placeholder.
_LAMBDA_RUNTIME = re.compile(r"\b(lambda_runtime|lambda_http)\b")


def check_role_actions(root: Path, role: str) -> tuple[list[str], str | None]:
    """DynamoDB/SQS/SSM actions granted to a role == the calls its code makes.

    Returns (problems, skip_reason); skip_reason is set when the role's crate
    does not exist yet or is still a placeholder without a Lambda handler, so
    there is no deployed code to compare with.
    """
    spec = ROLES[role]
    if not (root / spec["crate"] / "Cargo.toml").is_file():
        return [], f"{spec['crate']} does not exist yet: nothing to compare the {role} role's grants with"
    entry_sources = sorted((root / spec["crate"] / "src").rglob("*.rs"))
    if not any(_LAMBDA_RUNTIME.search(p.read_text(encoding="utf-8")) for p in entry_sources):
        return [], (
            f"{spec['crate']} has no Lambda handler yet (its src/ uses neither lambda_runtime "
            f"nor lambda_http): nothing deployed to compare the {role} role's grants with"
        )
    crates = role_crates(root, spec["crate"])
    sources = deployed_sources(root, crates)
    if "linked_files" in spec:
        own = (root / spec["crate"]).resolve()
        linked = {(root / f).resolve() for f in spec["linked_files"]}
        sources = [p for p in sources if own in p.resolve().parents or p.resolve() in linked]
    calls, problems = sdk_calls_in(root, sources)
    granted, grant_problems = granted_actions(root, spec["module"])
    problems += grant_problems
    # ../lambda-function grants ssm:GetParameter only for the parameters its
    # caller names (a dynamic statement): a function that passes none has it
    # not.
    module_text = "".join(p.read_text(encoding="utf-8") for p in (root / MODULES / spec["module"]).glob("*.tf"))
    sids = granted.get("ssm:GetParameter", [])
    if "ssm_parameter_names" not in module_text and sids and all(s.startswith("ReadOwnParameters") for s in sids):
        del granted["ssm:GetParameter"]

    needed: dict[str, list[str]] = {}
    for call in calls:
        needed.setdefault(call.action, []).append(call.where())
    module_calls, _ = module_tree(root, spec["module"])  # its problems are in grant_problems
    if any(t == "aws_lambda_event_source_mapping" for _, t, _, _ in tree_blocks(module_calls, root, "resource")):
        kind = spec.get("event_source")
        if kind not in EVENT_SOURCE_ACTIONS:
            problems.append(f"{role}: {MODULES}/{spec['module']} has an event source mapping but ROLES names no event_source kind")
        for action in EVENT_SOURCE_ACTIONS.get(kind, set()):
            needed.setdefault(action, []).append(f"the {kind} event source mapping")

    def compared(action: str) -> bool:
        return action.split(":", 1)[0] in COMPARED_SERVICES

    scanned = ", ".join(str(c.relative_to(root)) for c in crates)
    for action in sorted(a for a in granted if compared(a)):
        if "*" in action or "?" in action:
            problems.append(f"{role}: {MODULES}/{spec['module']} grants wildcard action {action!r}")
        elif action not in needed:
            problems.append(
                f"{role}: {MODULES}/{spec['module']} grants {action} (statement {', '.join(granted[action])}) "
                f"but no deployed code calls it (scanned {scanned})"
            )
    for action in sorted(a for a in needed if compared(a)):
        if action not in granted:
            sites = needed[action]
            more = f" and {len(sites) - 3} more" if len(sites) > 3 else ""
            problems.append(
                f"{role}: code calls {action} ({', '.join(sites[:3])}{more}) "
                f"but {MODULES}/{spec['module']} does not grant it"
            )
    return problems, None


def worker_timeout(root: Path) -> tuple[str | None, Any, str, list[str]]:
    """Where the worker function's `timeout` comes from.

    The aws_lambda_function may sit in a module the worker module calls; its
    `timeout` is followed through the module arguments. Returns (var, value,
    where, problems): var is the worker module variable that sets it (the
    usual case: its default and the live units' inputs then decide), else
    value is the literal found at `where`.
    """
    calls, problems = module_tree(root, WORKER_MODULE)
    functions = [(c, n, b) for c, t, n, b in tree_blocks(calls, root, "resource") if t == "aws_lambda_function"]
    if len(functions) != 1:
        names = [f"{c.label()}: aws_lambda_function.{n}" for c, n, _ in functions]
        return None, None, "", problems + [f"{MODULES}/{WORKER_MODULE}: expected one aws_lambda_function (in it or the modules it calls), found {names}"]
    call, name, body = functions[0]
    if "timeout" not in body:
        return None, None, "", problems + [f"{call.label()}: aws_lambda_function.{name} sets no timeout (Lambda's default is 3 s)"]
    value, ctx, where = resolve_in_tree(root, body["timeout"], call)
    if ctx is call and where == call.label():
        where = f"{call.label()}: aws_lambda_function.{name} timeout"
    m = _VAR_REF.fullmatch(str(unquote(value))) if isinstance(unquote(value), str) else None
    if m and ctx.parent is None:
        return m.group(1), None, where, problems
    return None, unquote(value), where, problems


def check_visibility_timeout(root: Path) -> list[str]:
    """Command queue visibility timeout >= 6x the worker's timeout.

    Checked for the module defaults (a plain `terraform apply` of the modules)
    and for every live worker unit against the queue unit it depends on. The
    worker's timeout is the worker module variable that reaches the function's
    `timeout` (through ../lambda-function), or a literal set on the way.
    """
    timeout_var, timeout_literal, timeout_where, problems = worker_timeout(root)
    if problems:
        return problems

    def worker_value(unit: Unit | None) -> tuple[Any, str]:
        if timeout_var is None:
            return timeout_literal, timeout_where
        if unit is None:
            return module_variable_defaults(root, WORKER_MODULE).get(timeout_var), f"{MODULES}/{WORKER_MODULE} default {timeout_var}"
        return unit_value(root, unit, timeout_var)

    q_defaults = module_variable_defaults(root, QUEUE_MODULE)
    pairs = [
        (
            (q_defaults.get("visibility_timeout_seconds"), f"{MODULES}/{QUEUE_MODULE} default visibility_timeout_seconds"),
            worker_value(None),
        )
    ]
    units = {u.path: u for u in live_units(root)}
    for unit in units.values():
        if unit.module != WORKER_MODULE:
            continue
        queue_units = [units[p] for p in unit.dependencies.values() if p in units and units[p].module == QUEUE_MODULE]
        if len(queue_units) != 1:
            problems.append(f"{unit.label(root)}: expected one dependency on a {QUEUE_MODULE} unit, found {len(queue_units)}")
            continue
        pairs.append(
            (
                unit_value(root, queue_units[0], "visibility_timeout_seconds"),
                worker_value(unit),
            )
        )
    for (vis, vis_src), (timeout, timeout_src) in pairs:
        v, t = as_number(vis), as_number(timeout)
        if v is None or t is None:
            problems.append(f"cannot read a number from {vis_src} ({vis!r}) or {timeout_src} ({timeout!r})")
        elif v < 6 * t:
            problems.append(
                f"visibility timeout {v:g} s ({vis_src}) is below 6x the worker timeout "
                f"{t:g} s ({timeout_src}): needs >= {6 * t:g} s"
            )
    return problems


_ARN_START = re.compile(r"arn:")
_ARN_STOP = set("\"'` \t\r\n,;)]}<>|\\")
# Services whose ARNs legitimately have an empty account field.
_NO_ACCOUNT_SERVICES = {"s3"}


def _read_arn(text: str, start: int) -> str:
    j, depth = start, 0
    while j < len(text):
        if text.startswith("${", j):
            depth += 1
            j += 2
            continue
        c = text[j]
        if depth:
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
        elif c in _ARN_STOP:
            break
        j += 1
    return text[start:j]


def _split_arn(arn: str) -> list[str]:
    fields, cur, depth, i = [], [], 0, 0
    while i < len(arn):
        if arn.startswith("${", i):
            depth += 1
            cur.append("${")
            i += 2
            continue
        c = arn[i]
        if depth and c == "{":
            depth += 1
        elif depth and c == "}":
            depth -= 1
        if c == ":" and not depth:
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    fields.append("".join(cur))
    return fields


def check_arn_accounts(root: Path) -> list[str]:
    """No ARN in infra/ has a wildcard (or, outside S3, an empty) account field."""
    problems = []
    infra = root / "infra"
    for path in sorted(infra.rglob("*")):
        if not path.is_file() or path.suffix not in {".tf", ".hcl", ".json", ".tpl", ".tfvars"}:
            continue
        if ".terragrunt-cache" in path.parts or ".terraform" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        for m in _ARN_START.finditer(text):
            if m.start() and (text[m.start() - 1].isalnum() or text[m.start() - 1] in "_-"):
                continue  # part of a longer word (e.g. "x_arn:")
            arn = _read_arn(text, m.start())
            fields = _split_arn(arn)
            if len(fields) < 6:
                continue  # prose such as "arn: ..." or a truncated example
            service, account = fields[2], fields[4]
            line = text.count("\n", 0, m.start()) + 1
            where = f"{path.relative_to(root)}:{line}"
            bare = re.sub(r"\$\{[^}]*\}", "", account)
            if "*" in bare or "?" in bare:
                problems.append(f"{where}: wildcard account id in {arn!r}")
            elif account == "" and service not in _NO_ACCOUNT_SERVICES:
                problems.append(f"{where}: empty account id in {arn!r}")
    return problems


# --------------------------------------------------------------------------
# One command config for both functions
# --------------------------------------------------------------------------

CONFIG_ENV = "BATON_CONFIG"
CONFIG_VAR = "config_path"
_ENV_ENTRY = re.compile(r"\b" + CONFIG_ENV + r"\s*=\s*([^,}\s]+)")


def _function_environment(root: Path, calls: list[ModuleCall]) -> tuple[str | None, list[str]]:
    """The environment a role's module hands the function, as written where
    the function's `environment.variables` comes from: a `var.environment`
    of the shared module followed up to the argument that sets it."""
    functions = [(c, n, b) for c, t, n, b in tree_blocks(calls, root, "resource") if t == "aws_lambda_function"]
    if len(functions) != 1:
        return None, [f"expected one aws_lambda_function, found {len(functions)}"]
    call, name, body = functions[0]
    variables = str(unquote(((body.get("environment") or [{}])[0]).get("variables", "")))
    m = re.fullmatch(r"\$\{local\.([A-Za-z0-9_]+)\}", variables)
    if m:
        for path in module_files(root, call.module):
            for entry in load_hcl(path).get("locals", []):
                if m.group(1) in entry:
                    variables = str(unquote(entry[m.group(1)]))
    if "var.environment" not in variables:
        return None, [f"{call.label()}: aws_lambda_function.{name} environment does not pass var.environment ({variables!r})"]
    value, _ctx, where = resolve_in_tree(root, "${var.environment}", call)
    return str(unquote(value)), []


def check_shared_config(root: Path) -> list[str]:
    """The worker and the router read the same command config.

    The router accepts a completion only from a pipeline of its command
    config and refuses commands by the config's policy before queueing; the
    worker dispatches the pipelines of its own and decides the policy again.
    So both modules
    set BATON_CONFIG from their `config_path` variable (the same default),
    no live unit overrides it through extra_environment, and in each
    environment folder the worker and router units pass the same
    `config_path`.
    """
    problems: list[str] = []
    defaults = {}
    for role in CONFIG_ROLES:
        module = ROLES[role]["module"]
        calls, tree_problems = module_tree(root, module)
        problems += tree_problems
        env, env_problems = _function_environment(root, calls)
        problems += [f"{role}: {p}" for p in env_problems]
        if env is None:
            continue
        entries = _ENV_ENTRY.findall(env)
        if entries != [f"var.{CONFIG_VAR}"]:
            problems.append(
                f"{role}: {MODULES}/{module} sets {CONFIG_ENV} to {entries or 'nothing'}, "
                f"not once from var.{CONFIG_VAR}: the two functions could read different command configs"
            )
        module_defaults = module_variable_defaults(root, module)
        declared = any(
            CONFIG_VAR in {unquote(k) for k in entry}
            for path in module_files(root, module)
            for entry in load_hcl(path).get("variable", [])
        )
        if not declared:
            problems.append(f"{role}: {MODULES}/{module} has no variable {CONFIG_VAR}")
        defaults[role] = module_defaults.get(CONFIG_VAR)
    if len(set(map(repr, defaults.values()))) > 1:
        problems.append(f"the modules' {CONFIG_VAR} defaults differ: {defaults}")

    units = live_units(root)
    by_folder: dict[Path, dict[str, Unit]] = {}
    modules = {ROLES[role]["module"]: role for role in CONFIG_ROLES}
    for unit in units:
        if unit.module in modules:
            by_folder.setdefault(unit.path.parent, {})[modules[unit.module]] = unit
            extra = str(unit.inputs.get("extra_environment", ""))
            if CONFIG_ENV in extra:
                problems.append(f"{unit.label(root)}: extra_environment sets {CONFIG_ENV}; use {CONFIG_VAR}")
    for folder, roles in sorted(by_folder.items()):
        if len(roles) < len(CONFIG_ROLES):
            continue
        values = {role: unit_value(root, unit, CONFIG_VAR) for role, unit in roles.items()}
        if len({repr(v) for v, _ in values.values()}) > 1:
            shown = "; ".join(f"{role}: {v!r} ({where})" for role, (v, where) in sorted(values.items()))
            problems.append(f"{folder.relative_to(root)}: the worker and the router get different command configs: {shown}")
    return problems


# --------------------------------------------------------------------------
# The reconciler schedule
# --------------------------------------------------------------------------

# What the worker's handler accepts as a scheduled invocation (crates/worker/src/main.rs).
RECONCILE_INPUT = {"action": "reconcile"}
SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
SCHEDULER_ACTIONS = {"lambda:InvokeFunction"}


def _function_arn_refs(root: Path, calls: list[ModuleCall], at: ModuleCall) -> set[str]:
    """Expressions naming the tree's function ARN as seen from `at`'s module."""
    refs = set()
    for call, rtype, name, _body in tree_blocks(calls, root, "resource"):
        if rtype != "aws_lambda_function":
            continue
        own = f"${{aws_lambda_function.{name}.arn}}"
        if call is at:
            refs.add(own)
        elif call.parent is at:
            for path in module_files(root, call.module):
                for entry in load_hcl(path).get("output", []):
                    for output, body in entry.items():
                        if unquote(body.get("value")) == own:
                            refs.add(f"${{module.{call.name}.{unquote(output)}}}")
    return refs


def _hcl_input(root: Path, call: ModuleCall, value: Any) -> Any:
    """A schedule input as data: a JSON string, or jsonencode() of an object
    of string literals, possibly through a local."""
    value = unquote(value)
    m = re.fullmatch(r"\$\{local\.([A-Za-z0-9_]+)\}", str(value))
    if m:
        for path in module_files(root, call.module):
            for entry in load_hcl(path).get("locals", []):
                if m.group(1) in entry:
                    value = unquote(entry[m.group(1)])
    m = re.fullmatch(r"\$\{jsonencode\(\{(.*)\}\)\}", str(value), re.DOTALL)
    if m:
        body = m.group(1).strip()
        pairs = re.findall(r'\s*"?([A-Za-z0-9_]+)"?\s*[=:]\s*"([^"]*)"\s*,?', body)
        rebuilt = "".join(re.findall(r'\s*"?[A-Za-z0-9_]+"?\s*[=:]\s*"[^"]*"\s*,?', body))
        return dict(pairs) if rebuilt.strip() == body else value
    try:
        return json.loads(str(value))
    except ValueError:
        return value


def check_secret_parameters(root: Path) -> list[str]:
    """Every `*_PARAM` variable a function module puts in its function's
    environment names an SSM parameter that function's role may read: the
    input it is set from also appears in the module's `ssm_parameter_names`
    (the grant of ssm:GetParameter). A secret added to the environment but
    not to the grant would stop every cold start with AccessDenied."""
    problems: list[str] = []
    for module in (WORKER_MODULE, ROUTER_MODULE, API_MODULE):
        found = False
        for path in module_files(root, module):
            for entry in load_hcl(path).get("module", []):
                for name, body in entry.items():
                    if "ssm_parameter_names" not in body:
                        continue
                    found = True
                    environment = str(body.get("environment", ""))
                    granted = str(body.get("ssm_parameter_names", ""))
                    pairs = re.findall(r'\b([A-Z][A-Z0-9_]*_PARAM)"?\s*=\s*(var\.\w+)', environment)
                    for env_name, ref in pairs:
                        if not re.search(re.escape(ref) + r"\b", granted):
                            problems.append(
                                f"{MODULES}/{module} module.{unquote(name)}: {env_name} = {ref}, "
                                f"but ssm_parameter_names does not grant {ref}"
                            )
        if not found:
            problems.append(f"{MODULES}/{module}: no module call passes ssm_parameter_names")
    return problems


def check_reconcile_schedule(root: Path) -> list[str]:
    """The worker module schedules reconciler passes, least privilege.

    One aws_scheduler_schedule targets the worker function with the input the
    worker reads as a reconcile request, through a role of its own that only
    the Scheduler service may assume and that may only lambda:InvokeFunction
    on that function.
    """
    calls, problems = module_tree(root, WORKER_MODULE)
    resources = tree_blocks(calls, root, "resource")
    schedules = [(c, n, b) for c, t, n, b in resources if t == "aws_scheduler_schedule"]
    if len(schedules) != 1:
        return problems + [f"{MODULES}/{WORKER_MODULE}: expected one aws_scheduler_schedule (the reconciler), found {len(schedules)}"]
    call, name, body = schedules[0]
    where = f"{call.label()}: aws_scheduler_schedule.{name}"
    targets = body.get("target", [])
    if len(targets) != 1:
        return problems + [f"{where}: expected one target, found {len(targets)}"]
    target = targets[0]
    function_refs = _function_arn_refs(root, calls, call)
    if unquote(target.get("arn")) not in function_refs:
        problems.append(f"{where}: target arn is {unquote(target.get('arn'))!r}, not the worker function ({sorted(function_refs)})")
    got = _hcl_input(root, call, target.get("input"))
    if got != RECONCILE_INPUT:
        problems.append(f"{where}: target input is {got!r}; the worker reads {json.dumps(RECONCILE_INPUT)} as a reconcile pass")

    m = _ROLE_REF.fullmatch(str(unquote(target.get("role_arn", ""))))
    if not m:
        return problems + [f"{where}: target role_arn {unquote(target.get('role_arn'))!r} is not a role of this module"]
    role = m.group(1)
    execution_role = function_role(root, calls)
    if execution_role and execution_role[0] is call and execution_role[1] == role:
        problems.append(f"{where}: invokes with the function's own execution role")
    roles = {n: b for c, t, n, b in resources if t == "aws_iam_role" and c is call}
    if role not in roles:
        return problems + [f"{where}: role aws_iam_role.{role} does not exist in {call.label()}"]
    role_where = f"{call.label()}: aws_iam_role.{role}"
    trust = _DOC_JSON.fullmatch(str(unquote(roles[role].get("assume_role_policy", ""))))
    if not trust:
        problems.append(f"{role_where}: assume_role_policy is not a data.aws_iam_policy_document; cannot read who may assume it")
    else:
        statements, doc_problems = _document_statements(root, call, trust.group(1), set())
        problems += doc_problems
        for stmt, _ in statements:
            if unquote(stmt.get("effect", "Allow")) != "Allow":
                continue
            actions = {unquote(a) for a in stmt.get("actions", [])}
            principals = [
                (unquote(p.get("type")), unquote(i))
                for p in stmt.get("principals", [])
                for i in p.get("identifiers", [])
            ]
            if actions != {"sts:AssumeRole"} or not principals or any(pr != ("Service", SCHEDULER_PRINCIPAL) for pr in principals):
                problems.append(
                    f"{role_where}: trust statement {unquote(stmt.get('sid', '?'))} lets {principals} {sorted(actions)}; "
                    f"only Service {SCHEDULER_PRINCIPAL} may sts:AssumeRole"
                )
    role_policies = [
        (n, b) for c, t, n, b in resources
        if t == "aws_iam_role_policy" and c is call
        and (_ROLE_REF.fullmatch(str(unquote(b.get("role", "")))) or [None, None])[1] == role
    ]
    if not role_policies:
        problems.append(f"{role_where}: no aws_iam_role_policy: the schedule cannot invoke the worker")
    for pname, pbody in role_policies:
        doc = _DOC_JSON.fullmatch(str(unquote(pbody.get("policy", ""))))
        if not doc:
            problems.append(f"{call.label()}: aws_iam_role_policy.{pname}.policy is not a data.aws_iam_policy_document; cannot read its actions")
            continue
        statements, doc_problems = _document_statements(root, call, doc.group(1), set())
        problems += doc_problems
        for stmt, _ in statements:
            if unquote(stmt.get("effect", "Allow")) != "Allow":
                continue
            sid = unquote(stmt.get("sid", "?"))
            for action in stmt.get("actions", []):
                if unquote(action) not in SCHEDULER_ACTIONS:
                    problems.append(f"{role_where}: statement {sid} grants {unquote(action)}; the schedule needs only lambda:InvokeFunction")
            resources_ = [unquote(r) for r in stmt.get("resources", [])]
            if not resources_ or any(r not in function_refs for r in resources_):
                problems.append(f"{role_where}: statement {sid} applies to {resources_}, not only the worker function")
    return problems


# --------------------------------------------------------------------------
# Alarms reach someone; the public URL is capped
# --------------------------------------------------------------------------

ALARM_MODULES = (QUEUE_MODULE, WORKER_MODULE)
ALARM_TOPIC_VARIABLE = "alarm_topic_arn"
# Where the worker writes the log line the lost-lock metric filter counts.
WORKER_SOURCES = "crates/worker/src"
_LOCAL_INTERPOLATION = re.compile(r"\$\{local\.([A-Za-z0-9_]+)\}")
_LOCAL_REF = re.compile(r"\blocal\.([A-Za-z0-9_]+)")


def module_locals(root: Path, module: str) -> dict[str, Any]:
    """The module's `locals` values by name, as python-hcl2 reads them."""
    out: dict[str, Any] = {}
    for path in module_files(root, module):
        for entry in load_hcl(path).get("locals", []):
            out.update({k: v for k, v in entry.items() if k != "__is_block__"})
    return out


def _expand_locals(value: Any, locals_: dict[str, Any]) -> str:
    """`value` with the module's locals written in: `${local.x}` inside a
    string as x's text, a bare `local.x` as its expression."""
    text = str(value)
    for _ in range(5):
        expanded = _LOCAL_INTERPOLATION.sub(
            lambda m: str(unquote(locals_[m.group(1)])) if m.group(1) in locals_ else m.group(0), text
        )
        expanded = _LOCAL_REF.sub(lambda m: str(locals_.get(m.group(1), m.group(0))), expanded)
        if expanded == text:
            break
        text = expanded
    return text


def check_alarms(root: Path) -> list[str]:
    """Every alarm of the queue and worker modules notifies the SNS topic an
    operator passes as `alarm_topic_arn` (optional: null notifies nobody)
    when it fires and when it clears; the lost-lock alarm's metric filter
    counts a message the worker still logs; the router's public URL has a
    concurrency cap by default (its checkov skip on the unauthenticated URL
    relies on one)."""
    problems: list[str] = []
    for module in ALARM_MODULES:
        where_module = f"{MODULES}/{module}"
        defaults = module_variable_defaults(root, module)
        if ALARM_TOPIC_VARIABLE not in defaults:
            problems.append(f"{where_module}: no optional variable {ALARM_TOPIC_VARIABLE} (default null)")
        elif defaults[ALARM_TOPIC_VARIABLE] is not None:
            problems.append(f"{where_module}: {ALARM_TOPIC_VARIABLE} defaults to {defaults[ALARM_TOPIC_VARIABLE]!r}, not null")
        locals_ = module_locals(root, module)
        resources = module_blocks(root, module, "resource")
        alarms = {n: b for (t, n), b in resources.items() if t == "aws_cloudwatch_metric_alarm"}
        if not alarms:
            problems.append(f"{where_module}: no aws_cloudwatch_metric_alarm")
        for name, body in alarms.items():
            for action in ("alarm_actions", "ok_actions"):
                if f"var.{ALARM_TOPIC_VARIABLE}" not in _expand_locals(body.get(action, ""), locals_):
                    problems.append(
                        f"{where_module}: aws_cloudwatch_metric_alarm.{name}.{action} does not include var.{ALARM_TOPIC_VARIABLE}"
                    )

    worker_locals = module_locals(root, WORKER_MODULE)
    filters = {
        n: b
        for (t, n), b in module_blocks(root, WORKER_MODULE, "resource").items()
        if t == "aws_cloudwatch_log_metric_filter"
    }
    if "lost_lock" not in filters:
        problems.append(f"{MODULES}/{WORKER_MODULE}: no aws_cloudwatch_log_metric_filter.lost_lock")
    else:
        pattern = _expand_locals(unquote(filters["lost_lock"].get("pattern", "")), worker_locals)
        m = re.search(r'\$\.fields\.message\s*=\s*\\?"([^"\\]+)\\?"', pattern)
        message = m.group(1) if m else None
        code = "\n".join(
            p.read_text(encoding="utf-8") for p in sorted((root / WORKER_SOURCES).rglob("*.rs"))
        )
        if message is None:
            problems.append(f"{MODULES}/{WORKER_MODULE}: lost_lock pattern {pattern!r} does not match one log message")
        elif not re.search(r'\bwarn!\([^;]*"' + re.escape(message) + '"', code):
            problems.append(
                f"{MODULES}/{WORKER_MODULE}: lost_lock counts log message {message!r}, which no warn! in {WORKER_SOURCES} writes"
            )

    cap = module_variable_defaults(root, ROUTER_MODULE).get("reserved_concurrency")
    if as_number(cap) is None or as_number(cap) < 1:
        problems.append(
            f"{MODULES}/{ROUTER_MODULE}: reserved_concurrency defaults to {cap!r}; the public URL needs a cap by default"
        )
    return problems


def check_queue_senders(root: Path) -> list[str]:
    """Only the router may send to the command queue.

    The command-queue module's policy denies sqs:SendMessage to every
    principal whose ARN is not one of `sender_role_names`; in each
    environment folder that list must name the router's execution role
    (`<function_name>-role`, as the lambda-function module names it), or
    the router could not enqueue at all, and the worker trusts no sender
    but it.
    """
    problems: list[str] = []
    main = (root / MODULES / "command-queue" / "main.tf").read_text()
    if not re.search(r'sid\s*=\s*"OnlyTheRouterSends"', main) or "aws:PrincipalArn" not in main:
        problems.append(f"{MODULES}/command-queue/main.tf: no queue policy statement denies senders other than sender_role_names")
    units = live_units(root)
    for queue in (u for u in units if u.module == "command-queue"):
        senders, where = unit_value(root, queue, "sender_role_names")
        routers = [u for u in units if u.module == "router-function" and u.path.parent == queue.path.parent]
        for router in routers:
            name, _ = unit_value(root, router, "function_name")
            role = f"{name}-role"
            if not isinstance(senders, list) or role not in [unquote(s) for s in senders]:
                problems.append(f"{where}: {senders!r} does not let the router's role {role!r} send")
    return problems


# --------------------------------------------------------------------------
# The dashboard
# --------------------------------------------------------------------------

DASHBOARD_MODULE = "dashboard"
EMF_RS = "crates/worker/src/emf.rs"
_EMF_NAME = re.compile(r'Metric::\w+\s*=>\s*"(\w+)"')
_BATON_METRIC = re.compile(r'\["Baton",\s*"(\w+)"')


def check_dashboard_metrics(root: Path) -> list[str]:
    """Every Baton metric the dashboard charts is one the worker emits."""
    emf = root / EMF_RS
    tf = root / MODULES / DASHBOARD_MODULE / "main.tf"
    if not emf.is_file() or not tf.is_file():
        return [f"{EMF_RS} or {MODULES}/{DASHBOARD_MODULE}/main.tf is missing"]
    emitted = set(_EMF_NAME.findall(emf.read_text(encoding="utf-8")))
    charted = set(_BATON_METRIC.findall(tf.read_text(encoding="utf-8")))
    if not charted:
        return [f"{MODULES}/{DASHBOARD_MODULE}: charts no Baton metric"]
    return [
        f"{MODULES}/{DASHBOARD_MODULE} charts Baton metric {name!r}, which {EMF_RS} never emits (it emits {sorted(emitted)})"
        for name in sorted(charted - emitted)
    ]


# --------------------------------------------------------------------------
# The workspaces a deployment serves
# --------------------------------------------------------------------------

TEAMS_VAR = "allowed_teams"
TEAMS_ENV = "BATON_ALLOWED_TEAMS"


def check_allowed_teams(root: Path) -> list[str]:
    """Both functions must be told which Slack workspaces they serve: the
    worker and router modules declare `allowed_teams` without a default,
    hand it to the code as BATON_ALLOWED_TEAMS, and the live units of one
    environment pass them the same value."""
    problems: list[str] = []
    for role in CONFIG_ROLES:
        module = ROLES[role]["module"]
        declared = [
            body
            for path in module_files(root, module)
            for entry in load_hcl(path).get("variable", [])
            for name, body in entry.items()
            if unquote(name) == TEAMS_VAR
        ]
        if not declared:
            problems.append(f"{role}: {MODULES}/{module} has no variable {TEAMS_VAR}")
        elif "default" in declared[0]:
            problems.append(f"{role}: {MODULES}/{module} gives {TEAMS_VAR} a default; a deployment must name its workspaces")
        text = "".join(p.read_text(encoding="utf-8") for p in module_files(root, module))
        if not re.search(rf"{TEAMS_ENV}\s*=\s*join\(\",\",\s*var\.{TEAMS_VAR}\)", text):
            problems.append(f"{role}: {MODULES}/{module} does not set {TEAMS_ENV} from var.{TEAMS_VAR}")
    by_folder: dict[Path, dict[str, Any]] = {}
    modules = {ROLES[role]["module"]: role for role in CONFIG_ROLES}
    for unit in live_units(root):
        if unit.module in modules:
            value = unit.inputs.get(TEAMS_VAR)
            if value is None:
                problems.append(f"{unit.label(root)}: passes no {TEAMS_VAR}")
            by_folder.setdefault(unit.path.parent, {})[modules[unit.module]] = value
    for folder, values in sorted(by_folder.items()):
        if len({repr(v) for v in values.values()}) > 1:
            problems.append(f"{folder.relative_to(root)}: the worker and the router serve different workspaces: {values}")
    return problems
