"""The retraining pipeline's definition, executed step by step on this machine with the real scripts: a stand-in for
SageMaker that reads every step's request from the generated definition JSON (inputs and their S3 URIs, local paths,
container entry point and arguments, channels, hyperparameters, output paths, the property file and the condition's
JSON paths) and plays it over a folder standing for the dataset bucket. No SageMaker here: this proves that the
definition's wiring fits the scripts (what Preprocess writes is what training reads, the property file has the paths
the ConditionStep reads), not SageMaker's own behaviour.

The library: one owner, 96 photos whose analysis saw a house on half of them; the owner added "grandma's house" to
the houses and rejected it elsewhere. Faces: none, so the faces branch must refuse its candidate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from photo_organizer.feedback.dataset import lines_by_partition
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType
from photo_organizer.learning.datasets import PhotoFeatures, to_line

ROOT = Path(__file__).resolve().parents[2]
RUN = "exec0001"
BUCKET = "dataset-bucket"
PHOTOS = 96  # each judged out of fold: enough positive labels (>= 10 of the gate) for it to judge tagging
SOURCE = "s3://assets/h1/sourcedir.tar.gz"
LAUNCHER = "s3://assets/h2/run_packaged.py"
TAG = "grandma's house"


def _pipeline():
    sys.path.insert(0, str(ROOT))
    from stacks.ml import load_pipeline_module

    return load_pipeline_module()


@pytest.fixture(scope="module")
def definition() -> dict:
    pipeline = _pipeline()
    config = pipeline.PipelineConfig(
        name="po-test-retraining", region="eu-west-1", role_arn="arn:aws:iam::111111111111:role/r",
        kms_key_arn="arn:aws:kms:eu-west-1:111111111111:key/k", dataset_bucket=BUCKET, source_uri=SOURCE,
        launcher_uri=LAUNCHER, export_function_arn="arn:aws:lambda:eu-west-1:111111111111:function:export",
        reapply_function_arn="arn:aws:lambda:eu-west-1:111111111111:function:reapply",
        model_package_groups={"tagging": "g-tagging", "faces": "g-faces"})
    return json.loads(pipeline.definition(config))


class StandIn:
    """S3 as a folder, and the values the pipeline resolves at run time."""

    def __init__(self, root: Path, definition: dict) -> None:
        self.root = root
        self.s3 = root / "s3"
        self.parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        self.properties: dict[str, str] = {}
        self.property_files: dict[str, dict] = {}

    def value(self, v):
        if isinstance(v, (str, int, float)):  # a literal in the definition
            return v
        if "Get" in v:
            name = v["Get"]
            if name == "Execution.PipelineExecutionId":
                return RUN
            if name.startswith("Parameters."):
                return self.parameters[name.split(".", 1)[1]]
            return self.properties[name]
        if "Std:Join" in v:
            return v["Std:Join"]["On"].join(str(self.value(x)) for x in v["Std:Join"]["Values"])
        if "Std:JsonGet" in v:
            document = self.property_files[v["Std:JsonGet"]["PropertyFile"]["Get"]]
            for part in v["Std:JsonGet"]["Path"].split("."):
                document = document[part]
            return document
        raise AssertionError(f"not played by the stand-in: {v}")

    def path(self, uri: str) -> Path:
        assert uri.startswith("s3://"), uri
        return self.s3 / uri[len("s3://"):]

    def download(self, uri: str, target: Path) -> None:
        """S3Prefix semantics: every object under the prefix, paths kept relative to it."""
        source = self.path(uri)
        target.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            shutil.copy(source, target / source.name)
        elif source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            raise AssertionError(f"no object under {uri}")

    def upload(self, folder: Path, uri: str) -> None:
        shutil.copytree(folder, self.path(uri), dirs_exist_ok=True)


def _container_path(job: Path, path: str) -> Path:
    assert path.startswith("/opt/ml/"), path
    return job / path[len("/opt/ml/"):]


def _remap(job: Path, value: str) -> str:
    return str(_container_path(job, value)) if value.startswith("/opt/ml/") else value


def _run_processing(stand_in: StandIn, step: dict, tmp: Path) -> None:
    args = step["Arguments"]
    job = tmp / step["Name"]
    for entry in args["ProcessingInputs"]:
        stand_in.download(stand_in.value(entry["S3Input"]["S3Uri"]), _container_path(job, entry["S3Input"]["LocalPath"]))
    entry_point = args["AppSpecification"]["ContainerEntrypoint"]
    assert entry_point[0] == "python3"
    arguments = [_remap(job, str(stand_in.value(a))) for a in args["AppSpecification"]["ContainerArguments"]]
    env = {"PATH": os.environ.get("PATH", ""), "PO_SOURCE_DIR": str(_container_path(job, "/opt/ml/processing/input/source")),
           **{k: stand_in.value(v) for k, v in args.get("Environment", {}).items()}}
    done = subprocess.run([sys.executable, "-I", str(_container_path(job, entry_point[1])), *arguments], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{step['Name']}: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    for output in args["ProcessingOutputConfig"]["Outputs"]:
        uri = stand_in.value(output["S3Output"]["S3Uri"])
        stand_in.upload(_container_path(job, output["S3Output"]["LocalPath"]), uri)
        stand_in.properties[f"Steps.{step['Name']}.ProcessingOutputConfig.Outputs['{output['OutputName']}'].S3Output.S3Uri"] = uri
    for property_file in step.get("PropertyFiles", []):
        [output] = [o for o in args["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == property_file["OutputName"]]
        stand_in.property_files[f"Steps.{step['Name']}.PropertyFiles.{property_file['PropertyFileName']}"] = json.loads(
            (stand_in.path(stand_in.value(output["S3Output"]["S3Uri"])) / property_file["FilePath"]).read_text())


def _run_training(stand_in: StandIn, step: dict, tmp: Path) -> None:
    """Script mode: the code channel's sourcedir.tar.gz extracted into /opt/ml/code, the entry point run there with
    SM_CHANNEL_*, SM_MODEL_DIR and the hyperparameters as --name value; the model dir tarred to the output path."""
    args = step["Arguments"]
    job = tmp / step["Name"]
    channels = {}
    for channel in args["InputDataConfig"]:
        target = job / "input" / "data" / channel["ChannelName"]
        stand_in.download(stand_in.value(channel["DataSource"]["S3DataSource"]["S3Uri"]), target)
        channels[channel["ChannelName"]] = target
    hyper = {k: stand_in.value(v) for k, v in args["HyperParameters"].items()}
    submit = json.loads(hyper.pop("sagemaker_submit_directory"))
    assert submit == "/opt/ml/input/data/code/sourcedir.tar.gz"
    code = job / "code"
    with tarfile.open(channels.pop("code") / "sourcedir.tar.gz") as tar:
        tar.extractall(code, filter="data")
    program = json.loads(hyper.pop("sagemaker_program"))
    user = [x for k, v in hyper.items() if not k.startswith("sagemaker_") for x in (f"--{k}", str(v))]
    model_dir = job / "model"
    model_dir.mkdir(parents=True)
    env = {"PATH": os.environ.get("PATH", ""), "SM_MODEL_DIR": str(model_dir),
           "SM_OUTPUT_DATA_DIR": str(job / "output" / "data"),
           **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()}}
    done = subprocess.run([sys.executable, "-I", str(code / program), *user], env=env, cwd=code,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{step['Name']}: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    uri = f"{stand_in.value(args['OutputDataConfig']['S3OutputPath'])}/job-{step['Name'].lower()}/output/model.tar.gz"
    target = stand_in.path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix())
    stand_in.properties[f"Steps.{step['Name']}.ModelArtifacts.S3ModelArtifacts"] = uri


def _library(stand_in: StandIn) -> None:
    """What the feedback Lambda and the ExportFeatures step leave in the bucket before the jobs start."""
    from datetime import datetime, timedelta, timezone

    photos, records = [], []
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    for n in range(PHOTOS):
        house = n % 2 == 0
        labels = {"house": 91.0, "building": 80.0} if house else {"dog": 88.0, "animal": 90.0}
        photos.append(PhotoFeatures(owner="ana", photo_id=f"p{n:02d}", analysed_at="2026-11-01T00:00:00Z",
                                    labels=labels, taken_at=f"2026-10-{1 + n % 28:02d}T12:00:00"))
        records.append(FeedbackRecord(feedback_id=f"f{n:02d}", owner="ana", created_at=start + timedelta(hours=n),
                                      type=FeedbackType.TAG_ADDED if house else FeedbackType.TAG_REJECTED,
                                      photo_id=f"p{n:02d}", tag=TAG))
    for prefix, text in lines_by_partition(records).items():
        target = stand_in.path(f"s3://{BUCKET}/{prefix}1-{len(records)}.jsonl")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    features = stand_in.path(f"s3://{BUCKET}/runs/{RUN}/features")
    features.mkdir(parents=True)
    (features / "photos.jsonl").write_text("".join(to_line(p) + "\n" for p in photos))
    (features / "faces.jsonl").write_text("")
    (features / "pairs.jsonl").write_text("")
    for kind in ("tagging", "faces"):  # nothing approved yet: the NONE markers
        marker = stand_in.path(f"s3://{BUCKET}/runs/{RUN}/approved/{kind}/NONE")
        marker.parent.mkdir(parents=True)
        marker.write_bytes(b"")
    # the code assets: the stack's source tarball and the launcher
    from stacks.ml import SCRIPTS_DIR, source_tarball

    stand_in.path(SOURCE).parent.mkdir(parents=True)
    stand_in.path(SOURCE).write_bytes(source_tarball())
    stand_in.path(LAUNCHER).parent.mkdir(parents=True)
    shutil.copy(SCRIPTS_DIR / "run_packaged.py", stand_in.path(LAUNCHER))


def test_the_definition_runs_with_the_real_scripts_and_promotes_only_the_better_kind(definition, tmp_path):
    pytest.importorskip("sklearn")
    stand_in = StandIn(tmp_path, definition)
    _library(stand_in)
    steps = {s["Name"]: s for s in definition["Steps"]}
    _run_processing(stand_in, steps["Preprocess"], tmp_path)
    sets = stand_in.path(f"s3://{BUCKET}/runs/{RUN}/sets")
    assert (sets / "labelled" / "tagging.jsonl").is_file() and not (sets / "test").exists()
    for name in ("TrainTagging", "TrainFaces"):
        _run_training(stand_in, steps[name], tmp_path)
    _run_processing(stand_in, steps["Evaluate"], tmp_path)
    evaluation = stand_in.property_files["Steps.Evaluate.PropertyFiles.Evaluation"]

    outcomes = {}
    for kind in ("Tagging", "Faces"):
        check = steps[f"Check{kind}"]["Arguments"]
        compare = {"Equals": lambda a, b: a == b, "GreaterThanOrEqualTo": lambda a, b: a >= b}
        values = [(c["Type"], stand_in.value(c["LeftValue"]), stand_in.value(c["RightValue"]))
                  for c in check["Conditions"]]
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for _, *pair in values for v in pair), values
        outcomes[kind] = all(compare[kind_](left, right) for kind_, left, right in values)
    tagging = evaluation["tagging"]
    shown = {k: {m: evaluation[k].get(m) for m in ("candidate", "approved", "baseline", "examples", "pairs", "promote")}
             | {"reason": evaluation[k]["decision"]["reason"]} for k in ("tagging", "faces")}
    print(json.dumps(shown))
    assert tagging["candidate"]["macro_f1"] > tagging["baseline"]["macro_f1"]
    assert outcomes == {"Tagging": True, "Faces": False}, json.dumps(shown)
    assert outcomes["Tagging"] == tagging["promote"]  # the ConditionStep agrees with learning.promotion

    # ReapplyTagging, with the registered model data as the step's arguments name it
    from photo_organizer.learning.tagging import models_from_document
    from photo_organizer.services.training_runs import ModelReapplication

    reapply = steps["CheckTagging"]["Arguments"]["IfSteps"][1]
    arguments = {k: stand_in.value(v) for k, v in reapply["Arguments"].items()}
    assert arguments["kind"] == "tagging" and arguments["execution_id"] == RUN

    class FolderArtifacts:
        def model_document(self, model_data):
            with tarfile.open(stand_in.path(model_data)) as tar:
                return json.load(tar.extractfile("model.json"))

        def read_features(self, run, name):
            yield from stand_in.path(f"s3://{BUCKET}/runs/{run}/features/{name}").read_text().splitlines()

    class Suggestions:
        def __init__(self):
            self.by_photo = {}

        def replace_suggestions(self, owner, photo_id, suggestions):
            self.by_photo[photo_id] = {s.tag: s for s in suggestions}

    def read_photo(text):
        body = json.loads(text)
        body.pop("schema", None)
        return PhotoFeatures(**body)

    suggestions = Suggestions()
    updated = ModelReapplication(FolderArtifacts(), suggestions=suggestions, matchers=None,
                                 tagging_models=models_from_document, read_photo=read_photo).reapply(
        arguments["kind"], arguments["model_data"], arguments["execution_id"])
    assert updated == PHOTOS
    houses = [suggestions.by_photo[f"p{n:02d}"][TAG].confidence for n in range(0, PHOTOS, 2)]
    others = [suggestions.by_photo[f"p{n:02d}"].get(TAG) for n in range(1, PHOTOS, 2)]
    assert min(houses) > max(o.confidence for o in others if o is not None)

