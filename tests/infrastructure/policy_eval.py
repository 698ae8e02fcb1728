"""The synthesized identity policies of one role, judged offline: is (action, resource, context) allowed? The
judging is the deploy rehearsal's evaluator (cloud.rehearsal.policy); this module only picks the role's statements
out of a template and resolves their resources without a data plane.

References are resolved by name: `Fn::GetAtt`/`Fn::GetStackOutput` of a resource whose logical id starts with one of
ALIASES becomes that alias's fixed ARN, and `Fn::Join` concatenates."""

from __future__ import annotations

import json
import re

from cloud.rehearsal.policy import Need, evaluate

ALIASES = {
    "Originals": "arn:aws:s3:::originals-bucket",
    "Derivatives": "arn:aws:s3:::derivatives-bucket",
    "Table": "arn:aws:dynamodb:eu-west-1:111111111111:table/photos",
    "DataKey": "arn:aws:kms:eu-west-1:111111111111:key/data-key",
    "Users": "arn:aws:cognito-idp:eu-west-1:111111111111:userpool/eu-west-1_users",
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


def allowed(statements: list[dict], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    resolved = [("role", {**statement, "Resource": [resolve(r) for r in _as_list(statement["Resource"])]})
                for statement in statements]
    return evaluate(Need(action, resource, tuple((context or {}).items())), resolved).allowed
