"""IAM policy JSON from the `aws_iam_policy_document` blocks of a module.

The CI role's policy is tested by evaluating it (test_ci_role.py), so it
must first become the JSON AWS would receive. Without a terraform binary,
this renders python-hcl2's reading of the module: the documents' statements
(plain and `dynamic`), with the expressions they use evaluated against the
module's variables and locals.

Only a small part of HCL's expression language is evaluated: literals,
lists, string templates, `var.x` and `local.x`, `[for x in xs : e]`, the
conditional `c ? a : b`, `!`, `&&`, `||`, comparisons, and the functions
`length`, `alltrue` and `strcontains`. Anything else raises
`Unrenderable` with the expression: a policy this cannot read is a failed
test, never a guess.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from infra_contract import MODULES, load_hcl, module_files, unquote


class Unrenderable(Exception):
    """An expression or block outside what this renderer evaluates."""


# --------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)
      | (?P<op>&&|\|\||==|!=|>=|<=|[\[\](),:?!<>])
      | (?P<quote>")
    )""",
    re.VERBOSE,
)


def _read_string(text: str, at: int) -> tuple[str, int]:
    """The raw template between the quote at `at` and its closing quote."""
    i, depth = at + 1, 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if c == "}" and depth:
            depth -= 1
        elif c == '"' and not depth:
            return text[at + 1 : i], i + 1
        i += 1
    raise Unrenderable(f"unterminated string in {text!r}")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        m = _TOKEN.match(text, at)
        if not m:
            raise Unrenderable(f"cannot read {text[at:]!r} in {text!r}")
        if m.group("quote"):
            start = m.start("quote")
            raw, at = _read_string(text, start)
            out.append(("string", raw))
            continue
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        at = m.end()
    return out


class _Parser:
    FUNCTIONS = {
        "length": lambda xs: len(xs),
        "alltrue": lambda xs: all(xs),
        "strcontains": lambda s, sub: sub in s,
    }

    def __init__(self, text: str, scope: dict[str, Any]):
        self.text, self.scope = text, scope
        self.toks, self.i = _tokens(text), 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise Unrenderable(f"expected {value!r} at {tok!r} in {self.text!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.expr()
        if self.peek() is not None:
            raise Unrenderable(f"unexpected {self.peek()!r} in {self.text!r}")
        return value

    def expr(self) -> Any:
        cond = self.or_()
        if self.peek() == ("op", "?"):
            self.take("?")
            yes = self.expr()
            self.take(":")
            no = self.expr()
            if not isinstance(cond, bool):
                raise Unrenderable(f"condition is not a bool in {self.text!r}")
            return yes if cond else no
        return cond

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value or right
        return value

    def and_(self) -> Any:
        value = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.cmp()
            value = value and right
        return value

    def cmp(self) -> Any:
        left = self.unary()
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("==", "!=", ">", "<", ">=", "<="):
            self.take()
            right = self.unary()
            return {
                "==": lambda: left == right,
                "!=": lambda: left != right,
                ">": lambda: left > right,
                "<": lambda: left < right,
                ">=": lambda: left >= right,
                "<=": lambda: left <= right,
            }[tok[1]]()
        return left

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not self.unary()
        return self.primary()

    def primary(self) -> Any:
        kind, value = self.take()
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "string":
            return template(value, self.scope)
        if (kind, value) == ("op", "("):
            inner = self.expr()
            self.take(")")
            return inner
        if (kind, value) == ("op", "["):
            return self.list_or_for()
        if kind == "name":
            if value in ("true", "false"):
                return value == "true"
            if value == "null":
                return None
            if self.peek() == ("op", "("):
                return self.call(value)
            return self.lookup(value)
        raise Unrenderable(f"cannot evaluate {value!r} in {self.text!r}")

    def list_or_for(self) -> list:
        if self.peek() == ("name", "for"):
            self.take()
            _, var = self.take()
            self.take("in")
            items = self.expr()
            self.take(":")
            start = self.i
            body_end = self._skip_to_closing()
            out = []
            for item in items:
                inner = _Parser("", {**self.scope, var: item})
                inner.toks, inner.text = self.toks[start:body_end], self.text
                out.append(inner.parse())
            self.i = body_end
            self.take("]")
            return out
        items = []
        while self.peek() != ("op", "]"):
            items.append(self.expr())
            if self.peek() == ("op", ","):
                self.take()
        self.take("]")
        return items

    def _skip_to_closing(self) -> int:
        depth, j = 0, self.i
        while j < len(self.toks):
            tok = self.toks[j]
            if tok in (("op", "["), ("op", "(")):
                depth += 1
            elif tok in (("op", "]"), ("op", ")")):
                if depth == 0:
                    return j
                depth -= 1
            elif tok == ("name", "if") and depth == 0:
                raise Unrenderable(f"`for … if` is not rendered: {self.text!r}")
            j += 1
        raise Unrenderable(f"unclosed for expression in {self.text!r}")

    def call(self, name: str) -> Any:
        if name not in self.FUNCTIONS:
            raise Unrenderable(f"function {name}() is not rendered: {self.text!r}")
        self.take("(")
        args = []
        while self.peek() != ("op", ")"):
            args.append(self.expr())
            if self.peek() == ("op", ","):
                self.take()
        self.take(")")
        return self.FUNCTIONS[name](*args)

    def lookup(self, name: str) -> Any:
        parts = name.split(".")
        if parts[0] in self.scope and len(parts) == 1:
            return self.scope[parts[0]]
        if len(parts) == 2 and parts[0] in ("var", "local"):
            table = self.scope.get(f"__{parts[0]}", {})
            if parts[1] not in table:
                raise Unrenderable(f"{name} has no value (in {self.text!r})")
            value = table[parts[1]]
            return value() if callable(value) else value
        raise Unrenderable(f"cannot resolve {name!r} in {self.text!r}")


def template(raw: str, scope: dict[str, Any]) -> Any:
    """A string template's value: its text with each `${…}` evaluated."""
    out, at = [], 0
    while True:
        start = raw.find("${", at)
        if start < 0:
            out.append(raw[at:])
            break
        out.append(raw[at:start])
        depth, j = 1, start + 2
        while j < len(raw) and depth:
            if raw.startswith("${", j):
                depth, j = depth + 1, j + 2
                continue
            if raw[j] == "}":
                depth -= 1
            j += 1
        value = _Parser(raw[start + 2 : j - 1], scope).parse()
        if start == 0 and j == len(raw):
            return value  # "${x}" alone keeps x's type
        out.append(str(value))
        at = j
    return "".join(out).replace('\\"', '"').replace("\\\\", "\\")


def evaluate(value: Any, scope: dict[str, Any]) -> Any:
    """python-hcl2's reading of an attribute value, evaluated."""
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return template(value[1:-1], scope)
        return template(value, scope)
    return value


# --------------------------------------------------------------------------
# A module's documents
# --------------------------------------------------------------------------


def module_scope(root: Path, module: str, variables: dict[str, Any]) -> dict[str, Any]:
    """var.* (the given values over the defaults) and local.* of a module."""
    var: dict[str, Any] = {}
    locals_raw: dict[str, Any] = {}
    for path in module_files(root, module):
        data = load_hcl(path)
        for entry in data.get("variable", []):
            for name, body in entry.items():
                if "default" in body:
                    var[unquote(name)] = evaluate(body["default"], {})
        for entry in data.get("locals", []):
            locals_raw.update({k: v for k, v in entry.items() if k != "__is_block__"})
    var.update(variables)
    scope: dict[str, Any] = {"__var": var}
    # Locals are evaluated when used, so one may refer to another.
    scope["__local"] = {k: (lambda v=v: evaluate(v, scope)) for k, v in locals_raw.items()}
    return scope


def variable_validations(root: Path, module: str) -> dict[str, list[str]]:
    """{variable: [raw condition, …]} of the module's validation blocks."""
    out: dict[str, list[str]] = {}
    for path in module_files(root, module):
        for entry in load_hcl(path).get("variable", []):
            for name, body in entry.items():
                for v in body.get("validation", []):
                    out.setdefault(unquote(name), []).append(v["condition"])
    return out


def validates(root: Path, module: str, name: str, value: Any) -> bool:
    """Whether every validation of variable `name` accepts `value`."""
    conditions = variable_validations(root, module).get(name)
    if not conditions:
        raise Unrenderable(f"{MODULES}/{module}: variable {name} has no validation")
    scope = module_scope(root, module, {name: value})
    return all(evaluate(c, scope) is True for c in conditions)


def _statement(body: dict, scope: dict[str, Any]) -> dict:
    allowed = {"sid", "effect", "actions", "resources", "principals", "condition", "__is_block__"}
    extra = set(body) - allowed
    if extra:
        raise Unrenderable(f"statement arguments {sorted(extra)} are not rendered")
    stmt: dict[str, Any] = {"Effect": evaluate(body.get("effect", '"Allow"'), scope)}
    if "sid" in body:
        stmt["Sid"] = evaluate(body["sid"], scope)
    stmt["Action"] = evaluate(body.get("actions", []), scope)
    if "resources" in body:
        stmt["Resource"] = evaluate(body["resources"], scope)
    for principal in body.get("principals", []):
        kind = evaluate(principal["type"], scope)
        stmt.setdefault("Principal", {})[kind] = evaluate(principal["identifiers"], scope)
    for cond in body.get("condition", []):
        test, variable = evaluate(cond["test"], scope), evaluate(cond["variable"], scope)
        values = evaluate(cond["values"], scope)
        tests = stmt.setdefault("Condition", {}).setdefault(test, {})
        if variable in tests:
            raise Unrenderable(f"two {test} conditions on {variable} are not rendered")
        tests[variable] = values
    return stmt


def policy_documents(
    root: Path, module: str, variables: dict[str, Any], only: set[str] | None = None
) -> dict[str, dict]:
    """{name: IAM policy JSON} of the module's aws_iam_policy_document blocks
    (those named in `only`, when given)."""
    scope = module_scope(root, module, variables)
    out: dict[str, dict] = {}
    for path in module_files(root, module):
        for entry in load_hcl(path).get("data", []):
            for dtype, named in entry.items():
                if unquote(dtype) != "aws_iam_policy_document":
                    continue
                for name, body in named.items():
                    if only is not None and unquote(name) not in only:
                        continue
                    statements = [_statement(s, scope) for s in body.get("statement", [])]
                    for dyn in body.get("dynamic", []):
                        for label, block in dyn.items():
                            if unquote(label) != "statement":
                                raise Unrenderable(f"dynamic {label} in {name} is not rendered")
                            for _ in evaluate(block["for_each"], scope):
                                statements += [_statement(c, scope) for c in block["content"]]
                    out[unquote(name)] = {"Version": "2012-10-17", "Statement": statements}
    return out


def role_policies(root: Path, module: str, role: str, variables: dict[str, Any]) -> list[dict]:
    """The inline policies of aws_iam_role.<role>, as the documents they use."""
    scope = module_scope(root, module, variables)
    policies = []
    for path in module_files(root, module):
        for entry in load_hcl(path).get("resource", []):
            for rtype, named in entry.items():
                rtype = unquote(rtype)
                for name, body in named.items():
                    if rtype == "aws_iam_role_policy_attachment" or rtype == "aws_iam_policy":
                        raise Unrenderable(f"{rtype}.{unquote(name)}: managed policies are not rendered")
                    if rtype != "aws_iam_role_policy" or str(body.get("role")) != f"${{aws_iam_role.{role}.id}}":
                        continue
                    if evaluate(body.get("count", 1), scope) == 0:
                        continue
                    m = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_]+)\.json\}", str(body.get("policy")))
                    if not m:
                        raise Unrenderable(f"aws_iam_role_policy.{unquote(name)}: policy {body.get('policy')!r} is not a document of the module")
                    policies.append((unquote(name), m.group(1)))
    documents = policy_documents(root, module, variables, {doc for _, doc in policies})
    missing = [name for name, doc in policies if doc not in documents]
    if missing:
        raise Unrenderable(f"aws_iam_role_policy {missing}: no such aws_iam_policy_document in the module")
    return [documents[doc] for _, doc in policies]
