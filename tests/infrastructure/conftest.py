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
    # The packed model's place in a real build (the analysis stack ships that folder to its Glue job).
    model = directory / "photo_organizer_models" / "minilm"
    model.mkdir(parents=True)
    (model.parent / "__init__.py").write_text("")
    for name in ("manifest.json", "model.safetensors", "vocab.txt"):
        (model / name).write_text(f"stub {name}\n")
    return directory


@pytest.fixture(scope="session")
def stub_label_model(tmp_path_factory) -> Path:
    """An exported label model's place (scripts/export_label_model.py): the .onnx and its sidecar JSON, stand-ins."""
    directory = tmp_path_factory.mktemp("label-model")
    (directory / "efficientnet_lite0.onnx").write_bytes(b"stub onnx\n")
    (directory / "efficientnet_lite0.json").write_text(json.dumps({"export_format": 2}))
    return directory / "efficientnet_lite0.onnx"


STUB_WHEELS = ("pillow-13.0.0-cp311-cp311-manylinux_2_28_x86_64.whl", "pydantic-2.14.4-py3-none-any.whl")


@pytest.fixture(scope="session")
def stub_glue_deps_dir(tmp_path_factory) -> Path:
    """A Glue dependency build (scripts/build_glue_deps.py's layout: manifest.json + wheels/) with stand-in wheel
    files, so synth needs neither the build nor the network."""
    import hashlib

    directory = tmp_path_factory.mktemp("glue-deps")
    (directory / "wheels").mkdir()
    entries = []
    for name in STUB_WHEELS:
        body = f"stub {name}\n".encode()
        (directory / "wheels" / name).write_bytes(body)
        entries.append({"file": name, "name": name.split("-")[0], "version": name.split("-")[1],
                        "sha256": hashlib.sha256(body).hexdigest()})
    (directory / "manifest.json").write_text(json.dumps({"wheels": entries}))
    return directory


def _stub_glue_jobs(directory: Path, *, cluster_faces: bool) -> Path:
    """Stand-ins for the Glue scripts, so these tests do not depend on the jobs' progress; cluster_faces is optional
    in the stack (skipped while its script does not exist), so one App has it and the other does not."""
    (directory / "analyze_photos").mkdir(parents=True)
    (directory / "analyze_photos" / "job.py").write_text("import transforms\n")
    (directory / "analyze_photos" / "transforms.py").write_text("PLAN = []\n")
    if cluster_faces:
        (directory / "cluster_faces").mkdir()
        (directory / "cluster_faces" / "job.py").write_text("print('cluster')\n")
    return directory


@pytest.fixture(scope="session")
def stub_glue_jobs_dir(tmp_path_factory) -> Path:
    return _stub_glue_jobs(tmp_path_factory.mktemp("glue-jobs"), cluster_faces=True)


CONCERNS = ("storage", "auth", "ingest", "search", "api", "analysis", "ml", "web")

# The second App's web app: a custom domain with its certificate, a WAF web ACL and no logs (test_web.py).
WEB_DOMAIN = "photos.example.org"
WEB_CERTIFICATE_ARN = "arn:aws:acm:us-east-1:111111111111:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
WEB_ACL_ARN = "arn:aws:wafv2:us-east-1:111111111111:global/webacl/photos/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


@pytest.fixture(scope="session")
def stub_web_dir(tmp_path_factory) -> Path:
    """A built web app's place (Vite's build/web): index.html and one hashed asset, stand-ins."""
    directory = tmp_path_factory.mktemp("web-stub")
    (directory / "assets").mkdir()
    (directory / "index.html").write_text('<!doctype html><script type="module" src="/assets/app-1a2b.js"></script>\n')
    (directory / "assets" / "app-1a2b.js").write_text("export {};\n")
    return directory


@pytest.fixture(scope="session")
def synthesized_serverless(tmp_path_factory, stub_lambda_dir, stub_glue_deps_dir, stub_label_model,
                           stub_web_dir) -> SynthesizedApp:
    """The second App of the session (each costs seconds): search_engine=serverless, no cluster_faces script."""
    return _synthesize(tmp_path_factory, {
        "lambda_code_dir": str(stub_lambda_dir),
        "glue_deps_dir": str(stub_glue_deps_dir),
        "label_model_file": str(stub_label_model),
        "glue_jobs_dir": str(_stub_glue_jobs(tmp_path_factory.mktemp("glue-jobs-partial"), cluster_faces=False)),
        "search_engine": "serverless",
        # Serverless refuses VECTORSEARCH (settings: server-generated ids); cdk.json may still name it.
        "opensearch_serverless_type": "SEARCH",
        # The optional caption endpoint, set here so that both of its states are synthesized without a third App.
        "caption_endpoint_name": "photo-captions",
        "web_code_dir": str(stub_web_dir),
        "web_domain_name": WEB_DOMAIN,
        "web_certificate_arn": WEB_CERTIFICATE_ARN,
        "web_acl_arn": WEB_ACL_ARN,
        "web_logging": False,
    })


def _synthesize(tmp_path_factory, overrides: dict) -> SynthesizedApp:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.app_builder import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(context={**cdk_json_context(), **overrides}, outdir=str(outdir))
    stacks = build_app(app)
    app.synth()
    templates = {concern: Template.from_stack(getattr(stacks, concern)) for concern in CONCERNS}
    return SynthesizedApp(stacks=stacks, templates=templates, assembly_dir=outdir)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory, stub_lambda_dir, stub_glue_jobs_dir, stub_glue_deps_dir,
                stub_label_model, stub_web_dir) -> SynthesizedApp:
    return _synthesize(tmp_path_factory, {"lambda_code_dir": str(stub_lambda_dir),
                                          "web_code_dir": str(stub_web_dir),
                                          "glue_jobs_dir": str(stub_glue_jobs_dir),
                                          "glue_deps_dir": str(stub_glue_deps_dir),
                                          "label_model_file": str(stub_label_model)})


def pytest_collection_modifyitems(items):
    # Synthesizing an App costs seconds: keep every CDK test on one xdist worker so each App is built once.
    for item in items:
        if "tests/infrastructure/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.xdist_group("cdk"))
