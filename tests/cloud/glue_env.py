"""The Glue jobs as the analysis stack deploys them, runnable on this machine (tests/cloud/test_glue_as_deployed.py).

- `synthesize`: the CDK app built in process (stacks.app_builder.build_app) into a temporary cloud assembly, with the
  real glue_jobs/, the real Glue wheel build and the packed MiniLM model; the analysis template and its asset
  manifest are read back from that assembly, never from hand-written copies.
- `DeployedJob`: one AWS::Glue::Job of the template: its script, DefaultArguments, and every S3 path in them
  resolved back to the assembly's files (what cdk-assets would upload there; zipped the way it zips directories).
- `glue_python`: a virtual environment that holds only what AWS Glue 5.0 provides (scripts/glue50_provided_modules.txt,
  Glue's versions, no plotting stack) plus Spark's Python side, into which the job's --additional-python-modules
  wheels are installed the way Glue does it (pip with the stack's --python-modules-installer-option, --no-index).
  Built once under build/glue-env/<digest of its inputs>/ and reused while nothing that goes in changes.
  Process-safe (pytest -n 2 runs both tests of the module in two workers): the check and the build happen under an
  exclusive lock on build/glue-env/.lock, and an environment is built under a hidden name and renamed into place
  only when finished, so no process ever sees, uses or deletes another one's half-built environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROVIDED_FILE = ROOT / "scripts" / "glue50_provided_modules.txt"
ENV_ROOT = ROOT / "build" / "glue-env"
MINILM_DIR = ROOT / "build" / "models" / "minilm"
MODELS_PACKAGE = "photo_organizer_models"
MINILM_FILES = ("manifest.json", "model.safetensors", "vocab.txt")

# Spark's Python side comes with Glue's Spark runtime (3.5.4), not from the provided-modules list. The 3.5 line is
# what matters to the job (same API, same py4j protocol); 3.5.9 is the lock's and already in the package cache.
SPARK_PACKAGES = ("pyspark==3.5.9", "py4j==0.10.9.9")
# Provided modules left out of the environment: plotting and installers, which no job imports. A subset of Glue's
# modules is stricter, not looser: whatever imports here imports on Glue.
# pip stays: it is Glue's own installer (23.0.1), and the job's wheels are installed with it, as Glue installs them.
LEFT_OUT = frozenset({"kaleido", "plotly", "matplotlib", "seaborn", "contourpy", "cycler", "fonttools", "kiwisolver",
                      "setuptools", "virtualenv"})


class GlueEnvUnavailableError(RuntimeError):
    """The environment could not be built (a package registry out of reach): the test skips, saying so."""


def provided_modules() -> dict[str, str]:
    pins = {}
    for line in PROVIDED_FILE.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$", line.strip())
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


# ---- the synthesized jobs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployedJob:
    name: str
    script: Path  # the staged script asset
    arguments: dict[str, object]  # DefaultArguments as synthesized (tokens left as CloudFormation wrote them)
    wheels: list[Path]  # --additional-python-modules, as local files
    py_files: list[Path]  # --extra-py-files, as local zips
    installer_options: list[str] = field(default_factory=list)  # --python-modules-installer-option


@dataclass(frozen=True)
class Assembly:
    outdir: Path
    template: dict
    asset_files: dict[str, Path]  # S3 object key -> local file or staged directory
    synth_seconds: float

    def jobs(self, zips: Path) -> dict[str, DeployedJob]:
        jobs = {}
        for resource in self.template["Resources"].values():
            if resource["Type"] != "AWS::Glue::Job":
                continue
            props = resource["Properties"]
            args = props["DefaultArguments"]
            jobs[props["Name"]] = DeployedJob(
                name=props["Name"],
                script=self.local(props["Command"]["ScriptLocation"], zips),
                arguments=args,
                wheels=[self.local(url, zips) for url in _listed(args.get("--additional-python-modules"))],
                py_files=[self.local(url, zips) for url in _listed(args.get("--extra-py-files"))],
                installer_options=str(args.get("--python-modules-installer-option", "")).split(),
            )
        return jobs

    def local(self, url: object, zips: Path) -> Path:
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise AssertionError(f"not an S3 path of this assembly: {url!r}")
        key = url.split("/", 3)[3]
        source = self.asset_files[key]  # KeyError: the argument names an object no asset uploads
        if source.is_dir():  # cdk-assets zips a directory asset at publish time: so do we, once
            target = zips / Path(key).name
            if not target.exists():
                _zip_directory(source, target)
            return target
        return source


def _listed(value: object) -> list[str]:
    return [item for item in str(value or "").split(",") if item]


def _zip_directory(source: Path, target: Path) -> None:
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source).as_posix())
    partial.replace(target)


def synthesize(outdir: Path, glue_deps_dir: Path) -> Assembly:
    """The real app into `outdir`; the Lambda code is a stand-in folder holding only the packed model (all the
    analysis stack takes from the Lambda build)."""
    import aws_cdk as cdk

    from stacks.app_builder import build_app

    lambda_dir = outdir.parent / "lambda-code"
    models = lambda_dir / MODELS_PACKAGE / "minilm"
    models.mkdir(parents=True, exist_ok=True)
    (lambda_dir / "index.py").write_text("def handler(event, context):\n    return None\n")
    (lambda_dir / MODELS_PACKAGE / "__init__.py").write_text("")
    for name in MINILM_FILES:
        shutil.copyfile(MINILM_DIR / name, models / name)
    web_dir = outdir.parent / "web-build"  # the WebStack ships a built app: a stand-in page
    web_dir.mkdir(parents=True, exist_ok=True)
    (web_dir / "index.html").write_text("<!doctype html><title>Photo Organizer</title>\n")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update({"lambda_code_dir": str(lambda_dir), "glue_jobs_dir": str(ROOT / "glue_jobs"),
                    "glue_deps_dir": str(glue_deps_dir), "web_code_dir": str(web_dir)})
    started = time.perf_counter()
    app = cdk.App(context=context, outdir=str(outdir))
    stacks = build_app(app)
    app.synth()
    seconds = time.perf_counter() - started
    stack_name = stacks.analysis.artifact_id
    template = json.loads((outdir / f"{stack_name}.template.json").read_text())
    manifest = json.loads((outdir / f"{stack_name}.assets.json").read_text())
    asset_files = {destination["objectKey"]: outdir / entry["source"]["path"]
                   for entry in manifest["files"].values() for destination in entry["destinations"].values()}
    return Assembly(outdir=outdir, template=template, asset_files=asset_files, synth_seconds=seconds)


# ---- the Glue 5.0 Python ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GluePython:
    root: Path
    built_seconds: float | None  # None: reused from the cache

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def spark_home(self) -> Path:
        return next((self.root / "lib").glob("python3*/site-packages/pyspark"))

    def modules(self) -> dict[str, str]:
        """Installed distributions: canonical name -> version."""
        out = subprocess.run([str(self.python), "-c", (
            "import importlib.metadata as m, json, re; print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name'])"
            ".lower(): d.version for d in m.distributions()}))")], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)


def _uv() -> Path:
    uv = Path(sys.executable).with_name("uv")
    if not uv.exists():
        raise GlueEnvUnavailableError(f"uv is not installed beside {sys.executable} (make install puts it there)")
    return uv


def _run(command: list[str], what: str) -> None:
    # No pip configuration of this machine (find-links, extra indexes) may widen what --no-index sees.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
    env.update({"UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": "", "PIP_CONFIG_FILE": os.devnull,
                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise GlueEnvUnavailableError(f"{what} failed: {(done.stderr or done.stdout).strip()[-1500:]}")


@contextlib.contextmanager
def exclusive(lock_file: Path):
    """An exclusive advisory lock (flock) held for the block: other processes wait, and a crashed holder's lock
    is released by the kernel with its file descriptor."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_build(env_root: Path, digest: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """`env_root/<digest>`, built by `build(directory)` unless a finished one is there; returns (path, built).
    The build goes into `.partial-<digest>` and is renamed into place once complete (a rename within one file
    system is atomic), all under the lock, so concurrent callers build once and only ever get finished ones.
    Finished environments of other digests are removed afterwards (~0.8 GB each)."""
    root = env_root / digest
    with exclusive(env_root / ".lock"):
        if (root / ".complete").exists():
            return root, False
        partial = env_root / f".partial-{digest}"
        for leftover in (root, partial):  # an interrupted build, or one from before builds were renamed in
            if leftover.exists():
                shutil.rmtree(leftover)
        build(partial)
        os.rename(partial, root)
        for stale in env_root.iterdir():
            if stale != root and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    return root, True


def glue_python(wheels: list[Path], installer_options: list[str]) -> GluePython:
    """Glue 5.0's modules + Spark's Python side + the job's wheels, installed as Glue installs them."""
    provided = {name: version for name, version in provided_modules().items() if name.lower() not in LEFT_OUT}
    inputs = {
        "provided": sorted(provided.items()),
        "spark": SPARK_PACKAGES,
        "wheels": sorted((w.name, hashlib.sha256(w.read_bytes()).hexdigest()) for w in wheels),
        "installer_options": installer_options,
        "python": sys.version_info[:2],
        "builder": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    started = time.perf_counter()

    def build(root: Path) -> None:
        uv = str(_uv())
        python = str(root / "bin" / "python")
        # Glue 5.0 runs CPython 3.11: the interpreter of this test run, which the project pins to 3.11 too.
        # Relocatable: the finished environment is renamed into place (its scripts must not name the build path).
        _run([uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(root)],
             "creating the Glue environment")
        _run([uv, "pip", "install", "--quiet", "--python", python, "--no-deps", "--no-build",
              *(f"{name}=={version}" for name, version in sorted(provided.items()))],
             "installing Glue 5.0's provided modules (wheels at Glue's versions)")
        _run([uv, "pip", "install", "--quiet", "--python", python, "--no-deps", *SPARK_PACKAGES],
             "installing Spark's Python side")
        # What Glue does at job start: its pip (23.0.1, provided) installs the S3 wheels with the job's
        # --python-modules-installer-option. With --no-index every dependency must be among the given wheels or
        # already installed (Glue's modules), or the install, and so the job, fails; a source distribution would
        # be built here.
        if wheels:
            _run([python, "-m", "pip", "install", "--quiet", "--no-cache-dir", *installer_options,
                  *map(str, wheels)], "installing the job's --additional-python-modules with Glue's pip, as Glue does")
        (root / ".complete").write_text(json.dumps(inputs, indent=2) + "\n")

    root, built = cached_build(ENV_ROOT, digest, build)
    return GluePython(root, time.perf_counter() - started if built else None)


# ---- running a job ---------------------------------------------------------------------------------------------


def resolve_arguments(arguments: dict[str, object], physical: dict[str, str]) -> dict[str, str]:
    """DefaultArguments with every CloudFormation value replaced by the physical name of the resource it refers to:
    `physical` maps a logical-id stem ('Table', 'Derivatives') to the name the test created. A value that refers to
    anything else fails the test: the job would get an argument this rehearsal does not know."""
    resolved = {}
    for name, value in arguments.items():
        if isinstance(value, str):
            resolved[name] = value
            continue
        text = json.dumps(value)
        stems = {stem for stem in physical if re.search(rf"\b(?:PublishOutputRef|ExportsOutputRef)?{stem}[0-9A-F]{{8}}",
                                                         text)}
        if len(stems) != 1:
            raise AssertionError(f"{name}: cannot resolve {text} to one of {sorted(physical)}")
        resolved[name] = physical[stems.pop()]
    return resolved


def job_command(env: GluePython, job: DeployedJob, arguments: dict[str, str]) -> list[str]:
    """spark-submit as Glue starts a job: --extra-py-files on every Python path (Spark's --py-files), then the
    script with `--JOB_NAME <name>` and every DefaultArgument as `--key value` (Glue passes its own too; the
    job ignores what it does not parse)."""
    argv = ["--JOB_NAME", job.name]
    for name, value in arguments.items():
        argv += [name, value]
    return [str(env.root / "bin" / "spark-submit"), "--master", "local[2]",
            "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.host=127.0.0.1",
            "--conf", "spark.sql.shuffle.partitions=2",
            "--py-files", ",".join(map(str, job.py_files)), str(job.script), *argv]


def job_environment(env: GluePython, aws: dict[str, str]) -> dict[str, str]:
    """Nothing of this test process's Python leaks in: no PYTHONPATH, no virtualenv; only the Glue environment's
    interpreter, Java, and the fake AWS endpoints."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "JAVA_HOME", "TMPDIR") if name in os.environ}
    keep["PATH"] = f"{env.root / 'bin'}{os.pathsep}{keep.get('PATH', '')}"
    return {
        **keep,
        **aws,
        "SPARK_HOME": str(env.spark_home),
        "PYSPARK_PYTHON": str(env.python),
        "PYSPARK_DRIVER_PYTHON": str(env.python),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYTHONHASHSEED": "0",
    }
