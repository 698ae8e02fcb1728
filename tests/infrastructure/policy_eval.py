"""A small offline evaluator of the synthesized identity policies: is (action, resource, context) allowed for a
role? Enough for the grants these stacks write (Allow statements, `*` wildcards in actions and resources,
StringLike/StringEquals conditions); explicit Deny and policy variables are not used by the stacks.

References are resolved by name: `Fn::GetAtt`/`Fn::GetStackOutput` of a resource whose logical id starts with one of
ALIASES becomes that alias's fixed ARN, and `Fn::Join` concatenates."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator

ALIASES = {
    "Originals": "arn:aws:s3:::originals-bucket",
    "Derivatives": "arn:aws:s3:::derivatives-bucket",
    "Table": "arn:aws:dynamodb:eu-west-1:111111111111:table/photos",
    "DataKey": "arn:aws:kms:eu-west-1:111111111111:key/data-key",
}


def resolve(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(resolve(p) for p in parts)
        text = json.dumps(value)
        for prefix, arn in ALIASES.items():
            if re.search(rf'"{prefix}[0-9A-F]{{8}}"|FnGetAtt{prefix}[0-9A-F]{{8}}Arn', text):
                return arn
        return f"<unresolved {text[:80]}>"
    raise TypeError(value)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict, role_prefix: str) -> list[dict]:
    """Every statement of the identity policies attached to the one role whose logical id starts with role_prefix."""
    roles = [lid for lid, r in template["Resources"].items()
             if r["Type"] == "AWS::IAM::Role" and lid.startswith(role_prefix)]
    assert len(roles) == 1, (role_prefix, roles)
    statements = []
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": roles[0]} in resource["Properties"]["Roles"]:
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _conditions_hold(condition: dict, context: dict[str, str]) -> bool:
    for operator, entries in condition.items():
        for key, expected in entries.items():
            actual = context.get(key)
            if actual is None:
                return False
            patterns = _as_list(expected)
            if operator == "StringLike" and not any(fnmatch.fnmatchcase(actual, p) for p in patterns):
                return False
            if operator == "StringEquals" and actual not in patterns:
                return False
            if operator not in ("StringLike", "StringEquals"):
                return False  # not modelled: treated as not matching, so a test fails loudly rather than passes
    return True


def matching_statements(statements: list[dict], action: str, resource: str,
                        context: dict[str, str] | None = None) -> Iterator[dict]:
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action, a) for a in _as_list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, resolve(r)) for r in _as_list(statement["Resource"])):
            continue
        if _conditions_hold(statement.get("Condition", {}), context or {}):
            yield statement


def allowed(statements: list[dict], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    return any(True for _ in matching_statements(statements, action, resource, context))
