"""The AWS calls of a Glue job run as deployed (tests/cloud/test_glue_as_deployed.py), checked against the job
role's synthesized statements, as test_who_calls_what checks the functions'.

- `hook_environment`: what the job's spark-submit gets so that every Python process of the job (driver and Spark's
  Python workers) records each AWS call with the rehearsal worker's botocore hook (glue_hook/sitecustomize.py
  loads worker.py and appends one JSON line per call to a file). Rekognition calls go to the stand-in, not moto:
  the hook sees them all.
- `JobRole`: the statements of the Glue job's role in the analysis template (AWS::IAM::Policy resources attached
  to it, its inline policies and template-made managed policies), with every reference resolved by the rehearsal's
  intrinsics resolver to the resources the test created; each call is mapped to permissions by rehearsal.needs and
  evaluated by rehearsal.policy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .intrinsics import Resolver, UnresolvedError
from .needs import CallContext, needs_of
from .policy import Decision, evaluate, statement_label

HOOK_DIR = Path(__file__).with_name("glue_hook")
CALLS_VARIABLE = "REHEARSAL_CALLS_FILE"


def hook_environment(calls_file: Path) -> dict[str, str]:
    """Environment entries for the job's subprocess: PYTHONPATH holds only the hook's directory (spark-submit and
    Spark's Python workers add theirs to it)."""
    return {"PYTHONPATH": str(HOOK_DIR), CALLS_VARIABLE: str(calls_file)}


def recorded(calls_file: Path) -> list[dict]:
    if not calls_file.exists():
        return []
    return [json.loads(line) for line in calls_file.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Created:
    """A resource of another stack that the test created: its Ref value and ARN."""

    ref: str
    arn: str


class _Template:
    """What the resolver asks of an assembly, over the one analysis template: the stack's environment, and the
    outputs of other stacks (CDK's Fn::GetStackOutput) as the resources the test created, by logical-id stem."""

    @dataclass(frozen=True)
    class _Stack:
        environment: Any

    @dataclass(frozen=True)
    class _Environment:
        account: str
        region: str

    def __init__(self, account: str, region: str, created: dict[str, Created]) -> None:
        self._environment = self._Environment(account, region)
        self._created = created

    def stack(self, name: str):
        return self._Stack(self._environment)

    def output(self, stack: str, name: str, resolver) -> str:
        match = re.fullmatch(r"PublishOutput(Ref|FnGetAtt)([A-Za-z0-9]+?)[0-9A-F]{8}(Arn)?[0-9A-F]{8}", name)
        if not match or match.group(2) not in self._created:
            raise UnresolvedError(f"{stack}: output {name} names nothing this test created ({sorted(self._created)})")
        created = self._created[match.group(2)]
        return created.arn if match.group(1) == "FnGetAtt" else created.ref

    def export(self, name: str, resolver) -> str:
        raise UnresolvedError(f"export {name}: the analysis stack imports nothing by export name")


class JobRole:
    def __init__(self, template: dict, job_name: str, *, account: str, region: str,
                 created: dict[str, Created], kms_keys: dict[tuple[str, str], str]) -> None:
        self.template, self.job_name = template, job_name
        self.context = CallContext(account, region, kms_keys)
        resources = template["Resources"]

        def physical(stack: str, logical: str, attribute: str | None) -> str:
            kind = resources[logical]["Type"] if logical in resources else "?"
            return f"{kind}/{logical}" + (f".{attribute}" if attribute else "")  # nothing a call's ARN matches

        self._resolver = Resolver(_Template(account, region, created), physical)
        [job] = [r for r in resources.values()
                 if r["Type"] == "AWS::Glue::Job" and r["Properties"]["Name"] == job_name]
        role = job["Properties"]["Role"]
        if not (isinstance(role, dict) and "Fn::GetAtt" in role):
            raise AssertionError(f"{job_name}: the role is not one of this template ({role!r})")
        self.role_logical = role["Fn::GetAtt"][0]
        self.statements = self._statements(resources)

    def _resolve(self, value: Any) -> Any:
        return self._resolver.resolve("analysis", value)

    def _statements(self, resources: dict) -> list[tuple[str, dict]]:
        def listed(document: dict) -> list[dict]:
            found = self._resolve(document).get("Statement", [])
            return found if isinstance(found, list) else [found]

        statements: list[tuple[str, dict]] = []
        for logical, resource in resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and \
                    {"Ref": self.role_logical} in props.get("Roles", []):
                statements += [(logical, s) for s in listed(props["PolicyDocument"])]
        role = resources[self.role_logical]["Properties"]
        for policy in role.get("Policies", []):
            statements += [(policy["PolicyName"], s) for s in listed(policy["PolicyDocument"])]
        for arn in role.get("ManagedPolicyArns", []):
            if not (isinstance(arn, dict) and arn.get("Ref") in resources):
                raise AssertionError(f"{self.job_name}: managed policy {arn!r} is not in the template; "
                                     "the offline check cannot read it")
            managed = resources[arn["Ref"]]["Properties"]
            statements += [(arn["Ref"], s) for s in listed(managed["PolicyDocument"])]
        return statements

    def decisions(self, calls: list[dict]) -> list[Decision]:
        seen, decisions = set(), []
        for call in calls:
            for need in needs_of(call, self.context):
                key = (need.action, need.resource, need.context)
                if key not in seen:
                    seen.add(key)
                    decisions.append(evaluate(need, self.statements))
        return decisions


def denials(decisions: list[Decision]) -> list[str]:
    return [f"missing statement {json.dumps(d.missing_statement())} for {d.need.why}" for d in decisions if not d.allowed]


LABEL_CHARS = 300  # the wheel grants list every asset object: cut, the policy name says where the rest is


def _general(text: str) -> str:
    text = re.sub(r"\brun-\d{8}T\d{6}Z\b", "run-{started}", text)
    return re.sub(r"\b[0-9a-f]{32}\b", "{photo_id}", text)


def _label(decision: Decision) -> str:
    label = statement_label(decision.statement)
    return f"{decision.policy}: " + (label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS] + " …")


def table_rows(job: str, decisions: list[Decision]) -> list[str]:
    rows, seen = [], set()
    for decision in decisions:
        need = decision.need
        row = (job, need.why, need.action + ("".join(f" if {k}={v}" for k, v in need.context)),
               _general(need.resource),
               _label(decision) if decision.allowed else "**DENIED**")
        if row not in seen:
            seen.add(row)
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return rows


def write_table(path: Path, sections: dict[str, list[Decision]]) -> str:
    lines = ["# AWS calls of the Glue jobs run as deployed", "",
             "Written by tests/cloud/test_glue_as_deployed.py from the calls every Python process of each job made "
             "(driver and Spark workers; recorded by the rehearsal worker's botocore hook, Rekognition's too) and the "
             "statement of the job role that allows each (offline evaluator over the synthesized analysis template). "
             "KMS rows are what S3 needs from the caller server-side for SSE-KMS.", "",
             "| job | call | permission | resource | allowed by (policy: statement) |", "|---|---|---|---|---|"]
    for job, decisions in sections.items():
        lines += table_rows(job, decisions)
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text
