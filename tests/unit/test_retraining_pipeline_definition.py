"""The retraining pipeline's definition JSON, as SageMaker would receive it in CreatePipeline: request-shape tests.

No SageMaker pipeline can run here (moto records pipelines and reports executions without running a step), so these
tests assert the request: the steps, their order and dependencies, the promotion condition, instance types, KMS keys,
the execution role, network isolation, the model package groups and the data locations. The definition is built with
the real SDK (sagemaker 2.257.7) offline: a socket that tried to connect would fail the build.
"""

from __future__ import annotations

import importlib
import json
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::111111111111:role/retraining"
KEY = "arn:aws:kms:eu-west-1:111111111111:key/data-key"
SOURCE = "s3://assets-bucket/source.tar.gz"
LAUNCHER = "s3://assets-bucket/run_packaged.py"
EXPORT = "arn:aws:lambda:eu-west-1:111111111111:function:export"
REAPPLY = "arn:aws:lambda:eu-west-1:111111111111:function:reapply"
GROUPS = {"tagging": "po-dev-tagging", "faces": "po-dev-faces"}
SKLEARN_IMAGE = "sagemaker-scikit-learn:1.4-2-cpu-py3"


def load_pipeline():
    """sagemaker/pipeline.py by path, as stacks/ml.py loads it (the folder is not a package)."""
    import importlib.util

    name = "po_retraining_pipeline"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "sagemaker" / "pipeline.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def definition() -> dict:
    pipeline = load_pipeline()
    config = pipeline.PipelineConfig(
        name="photo-organizer-dev-retraining", region="eu-west-1", role_arn=ROLE, kms_key_arn=KEY,
        dataset_bucket="dataset-bucket", source_uri=SOURCE, launcher_uri=LAUNCHER,
        export_function_arn=EXPORT, reapply_function_arn=REAPPLY, model_package_groups=GROUPS,
        processing_instance_type="ml.t3.medium", training_instance_type="ml.m5.xlarge",
        promotion_margin=0.02, min_held_out_examples=12, min_feedback_per_owner=8,
    )
    connect = socket.socket.connect

    def refuse(*args, **kwargs):
        raise AssertionError(f"the definition build tried to connect: {args[1:]}")

    socket.socket.connect = refuse
    try:
        text = pipeline.definition(config)
    finally:
        socket.socket.connect = connect
    return json.loads(text)


def _steps(definition: dict) -> dict[str, dict]:
    """Every step by name, the ones nested in condition branches included."""
    found = {}

    def walk(steps):
        for step in steps:
            found[step["Name"]] = step
            walk(step.get("Arguments", {}).get("IfSteps", []))
            walk(step.get("Arguments", {}).get("ElseSteps", []))

    walk(definition["Steps"])
    return found


def _refs(value) -> set[str]:
    """Every step a value reads a property of (`Steps.<name>.` in a Get)."""
    text = json.dumps(value)
    import re

    return set(re.findall(r'"Steps\.([A-Za-z]+)[.\[]', text))


def test_import_sagemaker_from_the_repo_root_is_the_sdk_not_our_scripts_folder():
    """sagemaker/ has no __init__.py: a regular package later on sys.path wins over a namespace folder."""
    assert not (ROOT / "sagemaker" / "__init__.py").exists()
    assert str(ROOT) in [str(Path(p).resolve()) for p in sys.path if p]  # pytest puts the repo root on sys.path
    sdk = importlib.import_module("sagemaker")
    assert Path(sdk.__file__).parent.name == "sagemaker" and "site-packages" in sdk.__file__
    assert hasattr(sdk, "__version__") and sdk.__version__.startswith("2.")
    assert load_pipeline().__name__ == "po_retraining_pipeline"


def test_request_shape_steps_in_order_with_their_dependencies(definition):
    top = [s["Name"] for s in definition["Steps"]]
    assert top == ["ExportFeatures", "Preprocess", "TrainTagging", "TrainFaces", "Evaluate", "CheckTagging",
                   "CheckFaces"]
    steps = _steps(definition)
    assert {name: steps[name]["Type"] for name in steps} == {
        "ExportFeatures": "Lambda", "Preprocess": "Processing", "TrainTagging": "Training",
        "TrainFaces": "Training", "Evaluate": "Processing", "CheckTagging": "Condition", "CheckFaces": "Condition",
        "RegisterTagging-RegisterModel": "RegisterModel", "RegisterFaces-RegisterModel": "RegisterModel",
        "ReapplyTagging": "Lambda", "ReapplyFaces": "Lambda"}
    # Preprocess waits for the export explicitly (it reads the snapshot by path, not by a step property)
    assert steps["Preprocess"]["DependsOn"] == ["ExportFeatures"]
    assert _refs(steps["TrainTagging"]) == _refs(steps["TrainFaces"]) == {"Preprocess"}
    assert _refs(steps["Evaluate"]) == {"Preprocess", "TrainTagging", "TrainFaces"}
    for kind in ("Tagging", "Faces"):
        check = steps[f"Check{kind}"]["Arguments"]
        assert _refs(check["Conditions"]) == {"Evaluate"}
        assert [s["Name"] for s in check["IfSteps"]] == [f"Register{kind}-RegisterModel", f"Reapply{kind}"]
        assert check["ElseSteps"] == []  # a worse candidate: nothing registered, nothing re-applied
        assert steps[f"Reapply{kind}"]["DependsOn"] == [f"Register{kind}-RegisterModel"]


def test_request_shape_condition_reads_the_gate_decision_evaluate_wrote(definition):
    steps = _steps(definition)
    for kind in ("tagging", "faces"):
        conditions = steps[f"Check{kind.capitalize()}"]["Arguments"]["Conditions"]
        evaluation = {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"}
        # one copy of the rule (learning.promotion, run by evaluate.py): the condition only reads its decision
        assert conditions == [{"Type": "Equals", "RightValue": 1, "LeftValue": {
            "Std:JsonGet": {"Path": f"{kind}.gate_passed", "PropertyFile": evaluation}}}]
    assert steps["Evaluate"]["PropertyFiles"] == [
        {"FilePath": "evaluation.json", "OutputName": "evaluation", "PropertyFileName": "Evaluation"}]
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[0] == "evaluate.py"  # run by run_packaged.py; evaluate.py writes gate_passed
    assert arguments[arguments.index("--margin") + 1] == {"Std:Join": {"On": "", "Values": [
        {"Get": "Parameters.PromotionMargin"}]}}
    assert arguments[arguments.index("--min-examples") + 1] == {"Std:Join": {"On": "", "Values": [
        {"Get": "Parameters.MinHeldOutExamples"}]}}


def test_request_shape_parameters_carry_the_configured_defaults(definition):
    assert {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]} == {
        "ProcessingInstanceType": ("String", "ml.t3.medium"), "TrainingInstanceType": ("String", "ml.m5.xlarge"),
        "PromotionMargin": ("Float", 0.02), "MinHeldOutExamples": ("Integer", 12),
        "MinFeedbackPerOwner": ("Integer", 8)}


def test_request_shape_every_job_uses_the_role_the_kms_key_network_isolation_and_the_instance_parameters(definition):
    steps = _steps(definition)
    for name in ("Preprocess", "Evaluate"):
        args = steps[name]["Arguments"]
        assert args["RoleArn"] == ROLE
        assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
        cluster = args["ProcessingResources"]["ClusterConfig"]
        assert cluster["VolumeKmsKeyId"] == KEY
        assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == KEY
        assert SKLEARN_IMAGE in args["AppSpecification"]["ImageUri"]
        assert args["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/run_packaged.py"]
        inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in args["ProcessingInputs"]}
        assert inputs["code"] == LAUNCHER and inputs["source"] == SOURCE
    for name in ("TrainTagging", "TrainFaces"):
        args = steps[name]["Arguments"]
        assert args["RoleArn"] == ROLE
        assert args["EnableNetworkIsolation"] is True
        assert args["EnableInterContainerTrafficEncryption"] is True
        assert args["ResourceConfig"]["VolumeKmsKeyId"] == KEY
        assert args["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
        assert args["OutputDataConfig"]["KmsKeyId"] == KEY
        assert SKLEARN_IMAGE in args["AlgorithmSpecification"]["TrainingImage"]
        assert "DebugHookConfig" not in args and args["ProfilerConfig"] == {"DisableProfiler": True}
        hyper = args["HyperParameters"]
        assert json.loads(hyper["sagemaker_program"]) == ("train_tagging.py" if name == "TrainTagging" else "train_faces.py")
        # network isolation: the source reaches the container as the "code" channel, not by an S3 download
        assert json.loads(hyper["sagemaker_submit_directory"]) == "/opt/ml/input/data/code/sourcedir.tar.gz"
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in args["InputDataConfig"]}
        assert channels["code"] == SOURCE
        # every labelled example (the candidate is fitted on all of them; Evaluate cross-fits over the same folder)
        assert channels["train"] == {"Std:Join": {"On": "/", "Values": [
            {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['sets'].S3Output.S3Uri"}, "labelled"]}}
        per_owner = "min-examples" if name == "TrainTagging" else "min-pairs"
        assert hyper[per_owner] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.MinFeedbackPerOwner"}]}}
    assert definition["PipelineExperimentConfig"] is None  # no Experiments trial per run (no extra permissions)


def _run_prefix(*parts: str) -> dict:
    run = {"Std:Join": {"On": "/", "Values": ["s3://dataset-bucket", "runs", {"Get": "Execution.PipelineExecutionId"}]}}
    return {"Std:Join": {"On": "/", "Values": [run, *parts]}}


def test_request_shape_data_stays_under_the_dataset_bucket_prefixes_of_the_run(definition):
    steps = _steps(definition)
    preprocess = steps["Preprocess"]["Arguments"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in preprocess["ProcessingInputs"]}
    assert inputs["feedback"] == "s3://dataset-bucket/feedback/"
    assert inputs["features"] == _run_prefix("features")
    # the approved tagging model: preprocess rebuilds the examples it was fitted on (its feedback_through)
    assert inputs["approved-tagging"] == _run_prefix("approved", "tagging")
    local = {i["InputName"]: i["S3Input"]["LocalPath"] for i in preprocess["ProcessingInputs"]}
    arguments = preprocess["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--approved-tagging") + 1] == local["approved-tagging"]
    [sets] = preprocess["ProcessingOutputConfig"]["Outputs"]
    assert sets["S3Output"]["S3Uri"] == _run_prefix("sets")
    for kind in ("tagging", "faces"):
        assert steps[f"Train{kind.capitalize()}"]["Arguments"]["OutputDataConfig"]["S3OutputPath"] == \
            _run_prefix("models", kind)
    evaluate = steps["Evaluate"]["Arguments"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in evaluate["ProcessingInputs"]}
    assert inputs["approved-tagging"] == _run_prefix("approved", "tagging")
    assert inputs["candidate-faces"] == {"Get": "Steps.TrainFaces.ModelArtifacts.S3ModelArtifacts"}
    # the same labelled examples the candidates were trained on, with their folds: the evaluation refits each
    # candidate's recipe without one fold at a time and judges that fold (a held-out "test" split no longer exists)
    assert inputs["examples"] == {"Std:Join": {"On": "/", "Values": [
        {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['sets'].S3Output.S3Uri"}, "labelled"]}}
    arguments = evaluate["AppSpecification"]["ContainerArguments"]
    destination = {i["InputName"]: i["S3Input"]["LocalPath"] for i in evaluate["ProcessingInputs"]}["examples"]
    assert arguments[arguments.index("--examples") + 1] == destination and "--test" not in arguments
    assert "Environment" not in evaluate  # the scripts read model.json out of the model.tar.gz themselves
    [evaluation] = evaluate["ProcessingOutputConfig"]["Outputs"]
    assert evaluation["S3Output"]["S3Uri"] == _run_prefix("evaluation")


def test_request_shape_registered_models_are_approved_in_their_kinds_group_and_reapplied(definition):
    steps = _steps(definition)
    for kind in ("tagging", "faces"):
        register = steps[f"Register{kind.capitalize()}-RegisterModel"]["Arguments"]
        assert register["ModelPackageGroupName"] == GROUPS[kind]
        assert register["ModelApprovalStatus"] == "Approved"
        [container] = register["InferenceSpecification"]["Containers"]
        model_data = {"Get": f"Steps.Train{kind.capitalize()}.ModelArtifacts.S3ModelArtifacts"}
        assert container["ModelDataUrl"] == model_data
        reapply = steps[f"Reapply{kind.capitalize()}"]
        assert reapply["FunctionArn"] == REAPPLY
        assert reapply["Arguments"] == {"kind": kind, "model_data": model_data,
                                        "execution_id": {"Get": "Execution.PipelineExecutionId"}}
    export = steps["ExportFeatures"]
    assert export["FunctionArn"] == EXPORT
    assert export["Arguments"] == {"execution_id": {"Get": "Execution.PipelineExecutionId"},
                                   "model_package_groups": GROUPS}
