"""An offline IAM evaluator: which statement of a role allows an action on a resource (explicit deny wins).

Supports Action/NotAction and Resource/NotResource with * and ? wildcards, and the condition operators the
templates use (String*, Arn*, Bool, Numeric*, with IfExists, and ForAnyValue/ForAllValues on lists); a condition key the
request context does not carry makes its condition false (as in IAM), except for IfExists operators.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Need:
    """One permission a call needs: action, resource ARN, condition context, and why (the call it comes from)."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    why: str = ""

    def describe(self) -> str:
        context = ", ".join(f"{k}={v}" for k, v in self.context)
        return f"{self.action} on {self.resource}" + (f" (with {context})" if context else "")


@dataclass(frozen=True)
class Decision:
    need: Need
    allowed: bool
    statement: dict | None  # the allowing (or denying) statement
    policy: str | None

    def missing_statement(self) -> dict:
        """The statement that would allow this need: what to add to the role."""
        statement: dict[str, Any] = {"Effect": "Allow", "Action": self.need.action, "Resource": self.need.resource}
        if self.need.context:
            statement["Condition"] = {"StringEquals": dict(self.need.context)}
        return statement


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _matches_action(statement: dict, action: str) -> bool:
    if "Action" in statement:
        return any(_glob(a, action, case=False) for a in _as_list(statement["Action"]))
    return not any(_glob(a, action, case=False) for a in _as_list(statement.get("NotAction")))


def _matches_resource(statement: dict, resource: str) -> bool:
    if "Resource" in statement:
        return any(_glob(r, resource, case=True) for r in _as_list(statement["Resource"]))
    return not any(_glob(r, resource, case=True) for r in _as_list(statement.get("NotResource")))


_NUMERIC = {
    "NumericEquals": lambda a, e: a == e, "NumericLessThan": lambda a, e: a < e,
    "NumericLessThanEquals": lambda a, e: a <= e, "NumericGreaterThan": lambda a, e: a > e,
    "NumericGreaterThanEquals": lambda a, e: a >= e,
}


def _operator(name: str, expected: list, actual: list[str]) -> bool:
    base = name.removesuffix("IfExists")
    negated = "Not" in base
    base = base.replace("Not", "")
    if base in ("StringEquals", "ArnEquals"):
        hit = any(a == e for a in actual for e in expected)
    elif base == "StringEqualsIgnoreCase":
        hit = any(a.lower() == e.lower() for a in actual for e in expected)
    elif base in ("StringLike", "ArnLike"):
        hit = any(_glob(e, a, case=True) for a in actual for e in expected)
    elif base == "Bool":
        hit = any(a.lower() == str(e).lower() for a in actual for e in expected)
    elif base in _NUMERIC:
        hit = any(_NUMERIC[base](float(a), float(e)) for a in actual for e in expected)
    else:
        raise ValueError(f"condition operator {name} is not supported by the rehearsal's evaluator")
    return not hit if negated else hit


def _conditions_hold(statement: dict, context: dict[str, str]) -> bool:
    for operator, clauses in statement.get("Condition", {}).items():
        qualifier, _, name = operator.rpartition(":")
        for key, expected in clauses.items():
            actual = context.get(key) if key in context else context.get(key.lower())
            if actual is None:
                if name == "Null":
                    if str(_as_list(expected)[0]).lower() != "true":
                        return False
                    continue
                if name.endswith("IfExists") or qualifier == "ForAllValues":
                    continue
                return False
            if name == "Null":
                if str(_as_list(expected)[0]).lower() == "true":
                    return False
                continue
            if not _operator(name, [str(e) for e in _as_list(expected)], [actual]):
                return False
    return True


def evaluate(need: Need, statements: list[tuple[str, dict]]) -> Decision:
    context = dict(need.context)
    allow: tuple[str, dict] | None = None
    for policy, statement in statements:
        if not (_matches_action(statement, need.action) and _matches_resource(statement, need.resource)):
            continue
        if not _conditions_hold(statement, context):
            continue
        if statement.get("Effect") == "Deny":
            return Decision(need, False, statement, policy)
        allow = allow or (policy, statement)
    if allow is None:
        return Decision(need, False, None, None)
    return Decision(need, True, allow[1], allow[0])


def statement_label(statement: dict | None) -> str:
    """A short readable form of a statement for the calls table."""
    if statement is None:
        return "(none)"
    actions = ", ".join(_as_list(statement.get("Action") or statement.get("NotAction")))
    resources = _as_list(statement.get("Resource") or statement.get("NotResource"))
    shown = ", ".join(r.split(":", 5)[-1] if r.startswith("arn:") else r for r in resources)  # ARN resource parts
    condition = " if " + json.dumps(statement["Condition"]) if statement.get("Condition") else ""
    return f"{statement.get('Sid', '')} [{actions}] on {shown}{condition}".strip()


def for_service(document: dict | str, service: str) -> list[tuple[str, dict]]:
    """The statements of a resource policy (key, queue, bucket, logs resource policy) that name a service
    principal, or everyone; in a key policy Resource "*" means the key itself."""
    if isinstance(document, str):
        document = json.loads(document)
    found = []
    for index, statement in enumerate(_as_list(document.get("Statement"))):
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if principal == "*" or service in services or (isinstance(principal, dict) and principal.get("AWS") == "*"):
            found.append((f"resource policy #{index}", statement))
    return found
