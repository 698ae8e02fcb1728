"""One CDK App per test session: each synth costs seconds. The Lambda code is a stub directory, so these
tests need neither the build step nor the network."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SynthesizedApp:
    stacks: object  # stacks.app_builder.PhotoOrganizerStacks
    templates: dict[str, object]  # concern -> aws_cdk.assertions.Template
    assembly_dir: Path

    def template(self, concern: str):
        return self.templates[concern]

    def template_json(self, concern: str) -> dict:
        return self.templates[concern].to_json()


def cdk_json_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@pytest.fixture(scope="session")
def stub_lambda_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("lambda-stub")
    (directory / "index.py").write_text("def handler(event, context):\n    return None\n")
    return directory


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory, stub_lambda_dir) -> SynthesizedApp:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.app_builder import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    context = {**cdk_json_context(), "lambda_code_dir": str(stub_lambda_dir)}
    app = cdk.App(context=context, outdir=str(outdir))
    stacks = build_app(app)
    app.synth()
    templates = {
        concern: Template.from_stack(getattr(stacks, concern))
        for concern in ("storage", "auth", "ingest", "api")
    }
    return SynthesizedApp(stacks=stacks, templates=templates, assembly_dir=outdir)
