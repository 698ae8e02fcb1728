"""The retraining pipeline (SageMaker Pipelines, sagemaker SDK v2), built offline into its definition JSON.

    ExportFeatures (Lambda) -> Preprocess (Processing) -> TrainTagging, TrainFaces (Training)
    -> Evaluate (Processing, evaluation.json) -> per kind: Check<Kind> (Condition)
       -> if the candidate beats the approved model: Register<Kind> (model package group, Approved)
                                                    -> Reapply<Kind> (Lambda)

This file is NOT part of an importable `sagemaker` package (the folder has no __init__.py: it would shadow the SDK).
The stack (stacks/ml.py) and the tests load it by path (`load_pipeline_module()` below shows how).

Data layout in the dataset bucket (every step reads and writes under its own prefix, which the execution role is
limited to):
    feedback/owner=<owner>/date=YYYY-MM-DD/<seqs>.jsonl        the feedback Lambda's lines (read; older parts:
                                                               feedback/date=YYYY-MM-DD/<seqs>.jsonl)
    erasures/<sha256 of owner>.json                            tombstones of erased owners (feedback Lambda)
    runs/<execution id>/features/                              ExportFeatures: the feature snapshot
    runs/<execution id>/approved/<kind>/                       ExportFeatures: the approved model (or NONE marker)
    runs/<execution id>/sets/labelled/                         Preprocess: every labelled example, with its fold
                                                               (and the approved tagging model's, as trained)
    runs/<execution id>/models/<kind>/.../model.tar.gz         Train<Kind> (SageMaker's output layout)
    runs/<execution id>/evaluation/evaluation.json             Evaluate

Source code: one tarball (`source_uri`) holding sagemaker/*.py, photo_organizer/__init__.py and
photo_organizer/learning/ (stacks/ml.py builds it as an asset). Training jobs extract it themselves (script mode
source_dir); processing jobs get it as an input and run `run_packaged.py` (a single-file asset, `launcher_uri`),
which extracts it and runs the named script with the given arguments.

Train<Kind> fits the candidate on every labelled example; Evaluate cross-fits the same recipe over the folds
Preprocess assigned (each example judged by a model fitted without its fold) and scores the approved model on the
same examples (learning.cross_fitting, training_core.evaluate): the approved tagging model cross-fitted too, its
recipe on the examples Preprocess rebuilt from the feedback it was trained on (its model.json's feedback_through),
so neither model is judged on what it was fitted on.

The promotion rule (learning.promotion: a gain of at least the margin whose paired-bootstrap lower bound is above
zero, with enough judged examples of each answer) cannot be written as pipeline conditions (they compare, they
neither add nor resample), and a second copy of it here would drift from the one the local backend uses. So
evaluate.py, given PromotionMargin and MinHeldOutExamples, applies the rule and writes its decision as a number,
`<kind>.gate_passed` (1 or 0), into evaluation.json; the ConditionStep only reads it from the property file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
SKLEARN_FRAMEWORK_VERSION = "1.4-2"  # sklearn 1.4.2 on Python 3.10 (the scripts keep to 3.10 and sklearn 1.4 APIs)
PY_VERSION = "py3"
KINDS = ("tagging", "faces")
# evaluation.json: the gate's decision per kind, 1 = promote (learning.promotion via evaluate.py)
GATE_PATH = {kind: f"{kind}.gate_passed" for kind in KINDS}
TRAIN_SCRIPT = {"tagging": "train_tagging.py", "faces": "train_faces.py"}
# The least an owner needs to get a model of their own (fewer: skipped, the approved model kept for them).
MIN_PER_OWNER_HYPERPARAMETER = {"tagging": "min-examples", "faces": "min-pairs"}
LAUNCHER = "run_packaged.py"

# The SDK's defaults config, given here so that no file of the machine is read, and its telemetry (an HTTPS call per
# estimator/processor use) is off: the definition is built offline.
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}

PROCESSING = "/opt/ml/processing"
DATASET_DIR = f"{PROCESSING}/input/dataset"
SOURCE_DIR = f"{PROCESSING}/input/source"
SETS_DIR = f"{PROCESSING}/output/sets"
LABELLED = "labelled"  # under SETS_DIR: learning.examples.LABELLED_DIR (preprocess.py writes it)
EXAMPLES_DIR = f"{PROCESSING}/input/examples"
EVALUATION_DIR = f"{PROCESSING}/output/evaluation"


def candidate_dir(kind: str) -> str:
    return f"{PROCESSING}/input/candidate/{kind}"


def approved_dir(kind: str) -> str:
    return f"{PROCESSING}/input/approved/{kind}"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the definition names. The stack passes placeholders for deploy-time values (stacks/ml.py swaps
    them for CloudFormation references after the SDK has built the JSON); tests pass plain values."""

    name: str
    region: str
    role_arn: str
    kms_key_arn: str
    dataset_bucket: str
    source_uri: str  # s3://.../source.tar.gz
    launcher_uri: str  # s3://.../run_packaged.py
    export_function_arn: str
    reapply_function_arn: str
    model_package_groups: dict[str, str]  # kind -> group name
    processing_instance_type: str = "ml.m5.large"
    training_instance_type: str = "ml.m5.large"
    promotion_margin: float = 0.01
    # judged examples the gate needs (each labelled example is judged once, out of fold; the name is the deployed
    # parameter's, MinHeldOutExamples, from when a held-out split was judged)
    min_held_out_examples: int = 10
    min_feedback_per_owner: int = 10
    max_runtime_seconds: int = 3600


def build_pipeline(config: PipelineConfig):
    """The Pipeline object (SDK v2). No AWS call is made: the session has its bucket and region set, and every piece of
    code is already an s3:// URI."""
    import boto3
    from sagemaker.network import NetworkConfig
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.sklearn.estimator import SKLearn
    from sagemaker.sklearn.processing import SKLearnProcessor
    from sagemaker.inputs import TrainingInput
    from sagemaker.lambda_helper import Lambda
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.step_collections import RegisterModel
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep

    # Stand-in credentials: boto3 looks for some (the instance metadata service included) as the SDK builds its
    # clients, though no request is ever sent with them.
    offline = boto3.Session(region_name=config.region, aws_access_key_id="offline", aws_secret_access_key="offline")
    session = PipelineSession(boto_session=offline,
                              default_bucket=config.dataset_bucket, sagemaker_config=SDK_CONFIG)
    session._default_bucket = config.dataset_bucket  # noqa: SLF001 - the SDK would otherwise ask S3/STS for one

    processing_type = ParameterString("ProcessingInstanceType", default_value=config.processing_instance_type)
    training_type = ParameterString("TrainingInstanceType", default_value=config.training_instance_type)
    margin = ParameterFloat("PromotionMargin", default_value=config.promotion_margin)
    min_held_out = ParameterInteger("MinHeldOutExamples", default_value=config.min_held_out_examples)
    min_feedback = ParameterInteger("MinFeedbackPerOwner", default_value=config.min_feedback_per_owner)
    parameters = [processing_type, training_type, margin, min_held_out, min_feedback]

    bucket = f"s3://{config.dataset_bucket}"
    run = Join(on="/", values=[bucket, "runs", ExecutionVariables.PIPELINE_EXECUTION_ID])

    def under_run(*parts: str) -> Join:
        return Join(on="/", values=[run, *parts])

    isolated = NetworkConfig(enable_network_isolation=True)

    def processor(job: str) -> SKLearnProcessor:
        return SKLearnProcessor(
            framework_version=SKLEARN_FRAMEWORK_VERSION, role=config.role_arn,
            instance_type=processing_type, instance_count=1,
            volume_kms_key=config.kms_key_arn, output_kms_key=config.kms_key_arn,
            max_runtime_in_seconds=config.max_runtime_seconds, base_job_name=f"{config.name}-{job}",
            sagemaker_session=session, network_config=isolated,
        )

    def source_input() -> ProcessingInput:
        return ProcessingInput(source=config.source_uri, destination=SOURCE_DIR, input_name="source")

    # 1. the feature snapshot of the library and the approved models, staged under this run's prefix
    export = LambdaStep(
        name="ExportFeatures",
        lambda_func=Lambda(function_arn=config.export_function_arn, session=session),
        inputs={"execution_id": ExecutionVariables.PIPELINE_EXECUTION_ID,
                "model_package_groups": dict(config.model_package_groups)},
        outputs=[LambdaOutput(output_name="photos", output_type=LambdaOutputTypeEnum.Integer),
                 LambdaOutput(output_name="faces", output_type=LambdaOutputTypeEnum.Integer)],
    )

    # 2. every labelled example, with its cross-fitting fold, from the feedback dataset and the snapshot
    preprocess = ProcessingStep(
        name="Preprocess",
        step_args=processor("preprocess").run(
            code=config.launcher_uri,
            inputs=[source_input(),
                    ProcessingInput(source=f"{bucket}/feedback/", destination=f"{DATASET_DIR}/feedback",
                                    input_name="feedback"),
                    ProcessingInput(source=under_run("features"), destination=f"{DATASET_DIR}/features",
                                    input_name="features"),
                    # its feedback_through: preprocess rebuilds the examples it was trained on, for the evaluation
                    ProcessingInput(source=under_run("approved", "tagging"), destination=approved_dir("tagging"),
                                    input_name="approved-tagging")],
            outputs=[ProcessingOutput(output_name="sets", source=SETS_DIR, destination=under_run("sets"))],
            arguments=["preprocess.py", "--input", DATASET_DIR, "--output", SETS_DIR,
                       "--approved-tagging", approved_dir("tagging")],
        ),
        depends_on=[export],
    )
    sets = preprocess.properties.ProcessingOutputConfig.Outputs["sets"].S3Output.S3Uri

    # 3. one training job per model kind on every labelled example (script mode, the scikit-learn container)
    trainings = {}
    for kind in KINDS:
        estimator = SKLearn(
            entry_point=TRAIN_SCRIPT[kind], source_dir=config.source_uri,
            framework_version=SKLEARN_FRAMEWORK_VERSION, py_version=PY_VERSION,
            role=config.role_arn, instance_type=training_type, instance_count=1,
            volume_kms_key=config.kms_key_arn, output_kms_key=config.kms_key_arn,
            output_path=Join(on="/", values=[run, "models", kind]),
            code_location=f"{bucket}/code",  # unused: the source is already in S3 (no upload)
            enable_network_isolation=True,
            encrypt_inter_container_traffic=True,
            max_run=config.max_runtime_seconds,
            base_job_name=f"{config.name}-{kind}",
            hyperparameters={MIN_PER_OWNER_HYPERPARAMETER[kind]: min_feedback},
            sagemaker_session=session,
            disable_profiler=True,
            debugger_hook_config=False,  # no Debugger hook: it would write tensors to S3 outside the run prefix
        )
        trainings[kind] = TrainingStep(
            name=f"Train{kind.capitalize()}",
            step_args=estimator.fit(inputs={"train": TrainingInput(
                s3_data=Join(on="/", values=[sets, LABELLED]), content_type="application/jsonlines")}),
        )

    # 4. candidate (cross-fitted) vs approved vs baseline on the same labelled examples, the gate's decision written
    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    model_inputs = []
    for kind in KINDS:
        model_inputs += [
            ProcessingInput(source=trainings[kind].properties.ModelArtifacts.S3ModelArtifacts,
                            destination=candidate_dir(kind), input_name=f"candidate-{kind}"),
            ProcessingInput(source=under_run("approved", kind), destination=approved_dir(kind),
                            input_name=f"approved-{kind}"),
        ]
    evaluate = ProcessingStep(
        name="Evaluate",
        step_args=processor("evaluate").run(
            code=config.launcher_uri,
            inputs=[source_input(), *model_inputs,
                    ProcessingInput(source=Join(on="/", values=[sets, LABELLED]), destination=EXAMPLES_DIR,
                                    input_name="examples")],
            outputs=[ProcessingOutput(output_name="evaluation", source=EVALUATION_DIR,
                                      destination=under_run("evaluation"))],
            arguments=["evaluate.py", "--margin", margin.to_string(), "--min-examples", min_held_out.to_string(),
                       "--candidate-tagging", candidate_dir("tagging"), "--candidate-faces", candidate_dir("faces"),
                       "--approved-tagging", approved_dir("tagging"), "--approved-faces", approved_dir("faces"),
                       "--examples", EXAMPLES_DIR, "--output", EVALUATION_DIR],
        ),
        property_files=[evaluation],
    )

    # 5. per kind: promote (register as Approved) and re-apply only when the candidate beats the approved model
    reapply_function = Lambda(function_arn=config.reapply_function_arn, session=session)
    checks = []
    for kind in KINDS:
        training = trainings[kind]
        model_data = training.properties.ModelArtifacts.S3ModelArtifacts
        register = RegisterModel(
            name=f"Register{kind.capitalize()}",
            estimator=_inference_estimator(training, config, session, kind),
            model_data=model_data,
            content_types=["application/json"], response_types=["application/json"],
            inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
            model_package_group_name=config.model_package_groups[kind],
            approval_status="Approved",
            description=f"{kind} model promoted by the retraining pipeline",
        )
        reapply = LambdaStep(
            name=f"Reapply{kind.capitalize()}",
            lambda_func=reapply_function,
            inputs={"kind": kind, "model_data": model_data, "execution_id": ExecutionVariables.PIPELINE_EXECUTION_ID},
            outputs=[LambdaOutput(output_name="updated", output_type=LambdaOutputTypeEnum.Integer)],
            depends_on=[register],
        )
        checks.append(ConditionStep(
            name=f"Check{kind.capitalize()}",
            conditions=[ConditionEquals(
                left=JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=GATE_PATH[kind]), right=1)],
            if_steps=[register, reapply],
            else_steps=[],
        ))

    return Pipeline(
        name=config.name,
        parameters=parameters,
        steps=[export, preprocess, *trainings.values(), evaluate, *checks],
        sagemaker_session=session,
        # No SageMaker Experiments trial per run: the role would need the Experiments API for nothing we read.
        pipeline_experiment_config=None,
    )


def _inference_estimator(training, config: PipelineConfig, session, kind: str):
    """RegisterModel wants an estimator for the inference image: the same scikit-learn container. The models are
    used by our own code (re-application), never served from an endpoint, so no inference script is registered."""
    from sagemaker.sklearn.estimator import SKLearn

    return SKLearn(entry_point=TRAIN_SCRIPT[kind], source_dir=config.source_uri,
                   framework_version=SKLEARN_FRAMEWORK_VERSION, py_version=PY_VERSION, role=config.role_arn,
                   instance_type="ml.m5.large", instance_count=1, sagemaker_session=session,
                   enable_network_isolation=True, disable_profiler=True)


def definition(config: PipelineConfig) -> str:
    """The pipeline definition JSON (what CreatePipeline/CfnPipeline take), generated offline."""
    with _offline():
        document = json.loads(build_pipeline(config).definition())
    return json.dumps(document, sort_keys=True)


@contextlib.contextmanager
def _offline():
    """The SDK builds default boto3 sessions of its own while importing and constructing estimators (JumpStart's
    constants, the TensorBoard helper); looking for their credentials would ask the instance metadata service.
    Nothing is sent with them, so that lookup is switched off while the definition is built."""
    saved = {name: os.environ.get(name) for name in ("AWS_EC2_METADATA_DISABLED", "SAGEMAKER_SUPPRESS_V2_WARNING")}
    os.environ.update({"AWS_EC2_METADATA_DISABLED": "true", "SAGEMAKER_SUPPRESS_V2_WARNING": "1"})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_pipeline_module() -> ModuleType:
    """This file as a module named `po_retraining_pipeline` (never `sagemaker...`): for stacks and tests."""
    name = "po_retraining_pipeline"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
