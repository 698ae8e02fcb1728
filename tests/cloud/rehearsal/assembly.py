"""The synthesized cloud assembly (cdk.out) the rehearsal starts from: synthesized with stacks.app_builder.build_app
(in a subprocess, so the test process never hosts jsii), cached under build/rehearsal/ keyed by a digest of what
goes in (stacks/, cdk.json, glue_jobs/, the bundle's build stamp, the Glue wheels' manifest, the context overrides),
and read back from the assembly's manifest, templates and asset manifests; never from hand-written copies of resources.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundles import HOST_BUNDLE, ROOT, exclusive

CACHE = ROOT / "build" / "rehearsal"
SYNTH_SCRIPT = Path(__file__).with_name("synth.py")
COMPLETE = ".rehearsal-complete"
GLUE_MANIFEST = ROOT / "build" / "glue" / "manifest.json"  # the analysis stack ships these wheels as assets


@dataclass(frozen=True)
class Environment:
    account: str
    region: str


@dataclass(frozen=True)
class StackArtifact:
    name: str
    template: dict
    environment: Environment
    assets: dict  # the stack's asset manifest ("files")

    @property
    def resources(self) -> dict[str, dict]:
        return self.template.get("Resources", {})


class Assembly:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        manifest = json.loads((directory / "manifest.json").read_text())
        self.stacks: dict[str, StackArtifact] = {}
        for name, artifact in manifest["artifacts"].items():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            account, region = artifact["environment"].removeprefix("aws://").split("/")
            assets: dict = {}
            for dependency in artifact.get("dependencies", []):
                dep = manifest["artifacts"].get(dependency, {})
                if dep.get("type") == "cdk:asset-manifest":
                    assets.update(json.loads((directory / dep["properties"]["file"]).read_text())["files"])
            template = json.loads((directory / artifact["properties"]["templateFile"]).read_text())
            self.stacks[name] = StackArtifact(name, template, Environment(account, region), assets)

    def stack(self, name: str) -> StackArtifact:
        return self.stacks[name]

    def stack_named(self, concern: str) -> StackArtifact:
        """The stack whose name ends with -<concern> (storage, auth, ingest, search, api, analysis)."""
        matches = [s for n, s in self.stacks.items() if n.endswith(f"-{concern}")]
        if len(matches) != 1:
            raise KeyError(f"no single stack for {concern!r} in {sorted(self.stacks)}")
        return matches[0]

    def resources(self, type_: str | None = None) -> Iterator[tuple[str, str, dict]]:
        for name, stack in self.stacks.items():
            for logical, resource in stack.resources.items():
                if type_ is None or resource["Type"] == type_:
                    yield name, logical, resource

    def output(self, stack: str, output: str, resolver) -> Any:
        outputs = self.stacks[stack].template.get("Outputs", {})
        if output not in outputs:
            raise KeyError(f"{stack} has no output {output}")
        return resolver.resolve(stack, outputs[output]["Value"])

    def export(self, name: str, resolver) -> Any:
        for stack, artifact in self.stacks.items():
            for output in artifact.template.get("Outputs", {}).values():
                if resolver.resolve(stack, output.get("Export", {}).get("Name")) == name:
                    return resolver.resolve(stack, output["Value"])
        raise KeyError(f"no stack exports {name}")

    def code_directory(self, stack: str, function: dict) -> Path:
        """The staged directory that `cdk deploy` zips and uploads as this function's code (excludes applied)."""
        key = function["Properties"]["Code"]["S3Key"]
        asset = self.stacks[stack].assets[key.removesuffix(".zip")]
        return self.directory / asset["source"]["path"]


def _digest(overrides: dict) -> str:
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode())
    files = [ROOT / "cdk.json", SYNTH_SCRIPT, HOST_BUNDLE / ".build-stamp.json", GLUE_MANIFEST]
    for folder in ("stacks", "glue_jobs"):
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


WEB_STUB = CACHE / "web-stub"


def _web_build() -> Path:
    """A stand-in for the Vite build the WebStack ships (index.html, one hashed asset): the rehearsal checks the
    hosting, not the app; fixed content, so the assembly's digest stays put."""
    (WEB_STUB / "assets").mkdir(parents=True, exist_ok=True)
    (WEB_STUB / "index.html").write_text('<!doctype html><script type="module" src="/assets/app-1a2b.js"></script>\n')
    (WEB_STUB / "assets" / "app-1a2b.js").write_text("export {};\n")
    return WEB_STUB


def synthesize(name: str = "default", overrides: dict | None = None) -> Assembly:
    """The assembly for cdk.json's context plus `overrides`, with the host bundle as the Lambda code; synthesized
    (~15-20 s) only when its digest is not cached yet. Older assemblies of the same name are removed."""
    context = {"lambda_code_dir": str(HOST_BUNDLE), "web_code_dir": str(_web_build()), **(overrides or {})}
    with exclusive("glue-deps"):  # scripts/build_glue_deps.py: a no-op when current (make test runs it first)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_glue_deps.py")], cwd=ROOT, check=True,
                       capture_output=True)
    with exclusive(f"assembly-{name}"):
        directory = CACHE / f"assembly-{name}-{_digest(context)}"
        if not (directory / COMPLETE).exists():
            _synthesize_into(directory, name, context)
    return Assembly(directory)


def _synthesize_into(directory: Path, name: str, context: dict) -> None:
    for stale in CACHE.glob(f"assembly-{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")]),
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_VERSION_CHECK": "1",
           "NODE_NO_WARNINGS": "1"}
    done = subprocess.run([sys.executable, str(SYNTH_SCRIPT), str(directory), json.dumps(context)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"synth failed ({done.returncode}):\n{done.stderr[-4000:]}")
    (directory / COMPLETE).write_text(json.dumps(context))
