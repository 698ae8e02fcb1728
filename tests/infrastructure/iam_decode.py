"""Every IAM policy statement in a synthesized template, decoded: identity policies (inline, managed), trust policies,
resource policies (bucket, key, queue, topic, OpenSearch domain, log and event-bus policies, Lambda permissions) and
OpenSearch Serverless data-access rules, wherever they sit in a resource's properties, with their CloudFormation
intrinsics rendered to text.

Rendering keeps references visible instead of inventing ARNs: `Ref X` -> `${X}`, `Fn::GetAtt [X, Arn]` -> `${X.Arn}`,
`Fn::Join` joins, `Fn::Sub` substitutes its variables map and keeps the rest, `Fn::Split`/`Fn::Select` evaluate,
`Fn::If` yields both branches (`AWS::NoValue` drops out), another stack's output ->
`${Output:<concern>.<output name>}`. A bare `*` therefore only appears where the template says
`*`, and `${Bucket.Arn}/*` stays visibly anchored to one bucket. An intrinsic this module does not know raises, so a
new form fails the gate instead of slipping through as "no wildcard"."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import product


class UnknownIntrinsic(ValueError):
    pass


NO_VALUE = object()


def render(value) -> list:
    """Every text the value can take (a list: Fn::If has two branches). Lists render element-wise into lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool | int | float):
        return [json.dumps(value)]
    if isinstance(value, list):
        options = [render(v) for v in value]
        return [[v for v in combo if v is not NO_VALUE] for combo in product(*options)]
    if not isinstance(value, dict):
        raise UnknownIntrinsic(repr(value)[:120])
    if len(value) != 1 or not _is_intrinsic(next(iter(value))):
        # A plain JSON object (a policy document embedded as an object): render its values.
        keys = list(value)
        return [dict(zip(keys, combo)) for combo in product(*(render(value[k]) for k in keys))]
    (name, argument), = value.items()
    if name == "Ref":
        return [NO_VALUE] if argument == "AWS::NoValue" else ["${%s}" % argument]
    if name == "Fn::GetAtt":
        target, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        return ["${%s.%s}" % (target, attribute)]
    if name == "Fn::Join":
        separator, parts = argument
        return [separator.join(_texts(p)) for p in render(parts)]
    if name == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        results = []
        for combo in product(*(render(v) for v in variables.values())):
            rendered = text
            for key, replacement in zip(variables, combo):
                rendered = rendered.replace("${%s}" % key, str(replacement))
            results.append(rendered)
        return results
    if name == "Fn::Split":
        separator, source = argument
        return [_Pieces(text, separator) for text in render(source)]
    if name == "Fn::Select":
        index, source = argument
        return [_select(options, int(index)) for options in render(source)]
    if name == "Fn::If":
        _, if_true, if_false = argument
        return render(if_true) + render(if_false)
    if name == "Fn::ImportValue":
        return ["${Import:%s}" % text for text in render(argument)]
    if name == "Fn::GetStackOutput":  # CDK's cross-stack reference (strong refs off): another stack's output
        return ["${Output:%s.%s}" % (argument["StackName"].rsplit("-", 1)[-1], argument["OutputName"])]
    if name == "Fn::GetAZs":
        return [["${AZ1}", "${AZ2}", "${AZ3}"]]
    raise UnknownIntrinsic(name)


class _Pieces(list):
    """Fn::Split's result, remembering what was split: a reference cannot be split before deploy."""

    def __init__(self, text: str, separator: str):
        super().__init__(text.split(separator))
        self.text, self.separator = text, separator


def _select(options: list, index: int) -> str:
    if isinstance(options, _Pieces) and "${" in options.text:
        # e.g. the region field of a bucket's ARN: stays a reference, written without nested braces
        flat = options.text.replace("${", "").replace("}", "")
        return "${%s|split(%s)[%d]}" % (flat, options.separator, index)
    return options[index]


def _is_intrinsic(key: str) -> bool:
    return key == "Ref" or key.startswith("Fn::")


def _texts(parts) -> list[str]:
    if not isinstance(parts, list):
        raise UnknownIntrinsic(f"Fn::Join over {parts!r}"[:120])
    if any(not isinstance(p, str) for p in parts):
        raise UnknownIntrinsic(f"Fn::Join part {parts!r}"[:120])
    return parts


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    """One decoded statement. `where` is the property path that held its document."""

    concern: str
    logical_id: str
    resource_type: str
    where: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_actions: tuple[str, ...]
    not_resources: tuple[str, ...]
    principal: str
    has_condition: bool
    sid: str


def _statements_of(document: dict, *, concern, logical_id, resource_type, where) -> list[Statement]:
    decoded = []
    for statement in as_list(document.get("Statement")):
        for variant in render(statement):
            decoded.append(Statement(
                concern=concern, logical_id=logical_id, resource_type=resource_type, where=where,
                effect=variant.get("Effect", "Allow"),
                actions=tuple(_flat(variant.get("Action"))),
                resources=tuple(_flat(variant.get("Resource"))),
                not_actions=tuple(_flat(variant.get("NotAction"))),
                not_resources=tuple(_flat(variant.get("NotResource"))),
                principal=json.dumps(variant.get("Principal"), sort_keys=True),
                has_condition=bool(variant.get("Condition")),
                sid=str(variant.get("Sid", "")),
            ))
    return decoded


def _flat(value) -> list[str]:
    out = []
    for item in as_list(value):
        if isinstance(item, list):
            out += _flat(item)
        elif item is not NO_VALUE:
            out.append(item if isinstance(item, str) else json.dumps(item))
    return out


def _aoss_rules(text: str, *, concern, logical_id, resource_type, where) -> list[Statement]:
    """An OpenSearch Serverless data-access policy: a JSON list of {Rules: [{Permission, Resource}], Principal}."""
    decoded = []
    for policy in json.loads(text):
        for rule in policy.get("Rules", []):
            decoded.append(Statement(
                concern=concern, logical_id=logical_id, resource_type=resource_type, where=where, effect="Allow",
                actions=tuple(rule.get("Permission", [])), resources=tuple(rule.get("Resource", [])),
                not_actions=(), not_resources=(), principal=json.dumps(policy.get("Principal"), sort_keys=True),
                has_condition=False, sid=rule.get("ResourceType", ""),
            ))
    return decoded


def _walk(value, path: str):
    """(path, document) for every policy document under value: objects with a Statement list, and JSON text that
    holds one (after rendering)."""
    if isinstance(value, dict):
        if "Statement" in value and isinstance(value["Statement"], list | dict):
            yield path, value
            return
        if len(value) == 1 and next(iter(value)) in ("Fn::Join", "Fn::Sub"):
            for text in render(value):
                yield from _walk_text(text, path)
            return
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}[{index}]")
    elif isinstance(value, str):
        yield from _walk_text(value, path)


def _walk_text(text, path):
    if isinstance(text, str) and '"Statement"' in text:
        document = json.loads(text)
        if isinstance(document, dict) and "Statement" in document:
            yield path, document


def decode_template(concern: str, template: dict) -> list[Statement]:
    statements = []
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        context = {"concern": concern, "logical_id": logical_id, "resource_type": kind}
        if kind == "AWS::OpenSearchServerless::AccessPolicy" and properties.get("Type") == "data":
            for text in render(properties["Policy"]):
                statements += _aoss_rules(text, where="Policy", **context)
            continue
        if kind == "AWS::Lambda::Permission":
            # A resource policy written as a resource: one statement on one function.
            statements.append(Statement(
                where="Properties", effect="Allow", actions=(properties["Action"],),
                resources=tuple(_flat(render(properties["FunctionName"]))), not_actions=(), not_resources=(),
                principal=json.dumps(render(properties["Principal"])[0]),
                has_condition=bool(properties.get("SourceArn") or properties.get("SourceAccount")), sid="",
                **context))
            continue
        for where, document in _walk(properties, "Properties"):
            statements += _statements_of(document, where=where, **context)
    return statements


def is_wildcard_action(action: str) -> bool:
    return "*" in action or "?" in action


def is_wildcard_resource(resource: str) -> bool:
    # `${...}` placeholders never contain '*'; a '*' is always the template's own.
    return "*" in re.sub(r"\$\{[^}]*\}", "", resource)
