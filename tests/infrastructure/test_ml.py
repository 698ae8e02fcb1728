"""MlStack: dataset bucket, feedback function on the table stream, the pipeline's Lambda steps, model package groups,
the SageMaker pipeline with its generated definition, and the least-privilege roles (judged offline with the
rehearsal's IAM evaluator through policy_eval)."""

from __future__ import annotations

import io
import json
import re
import tarfile

import pytest

from .policy_eval import allowed, role_statements

pytestmark = pytest.mark.infrastructure

REGION, ACCOUNT = "eu-west-1", "111111111111"
PIPELINE = "photo-organizer-dev-retraining"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}"
TABLE = "arn:aws:dynamodb:eu-west-1:111111111111:table/photos"
KEY = "arn:aws:kms:eu-west-1:111111111111:key/data-key"
DATASET = "arn:aws:s3:::dataset-bucket"


def _resources(synthesized, type_: str) -> dict[str, dict]:
    return synthesized.template("ml").find_resources(type_)


def _function(synthesized, handler: str) -> tuple[str, dict]:
    [(logical, function)] = synthesized.template("ml").find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": handler}}).items()
    return logical, function["Properties"]


def _definition(synthesized) -> dict:
    """The pipeline definition with CloudFormation's Fn::Join flattened: references shown as <Logical.Attr>."""
    [pipeline] = _resources(synthesized, "AWS::SageMaker::Pipeline").values()
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]

    def flat(value) -> str:
        if isinstance(value, str):
            return value
        if "Fn::Join" in value:
            return value["Fn::Join"][0].join(flat(v) for v in value["Fn::Join"][1])
        if "Fn::GetAtt" in value:
            return "<" + ".".join(value["Fn::GetAtt"]) + ">"
        if "Ref" in value:
            return "<" + value["Ref"] + ">"
        if "Fn::Sub" in value:
            return value["Fn::Sub"]
        return json.dumps(value).replace('"', "'")

    return json.loads(flat(body))


def _ml_statements(synthesized, role_prefix: str) -> list[dict]:
    """The role's statements with the dataset bucket resolved to a fixed name (policy_eval knows the others)."""
    template = json.loads(re.sub(r'\{"Fn::GetAtt": \["Dataset[0-9A-F]{8}", "Arn"\]\}', f'"{DATASET}"',
                                 json.dumps(synthesized.template_json("ml"))))
    return role_statements(template, role_prefix)


def test_the_stack_is_deployed_after_the_api_and_named_after_the_settings(synthesized):
    stacks = synthesized.stacks
    order = [s.stack_name for s in stacks.all()]
    assert stacks.ml.stack_name == "photo-organizer-dev-ml"
    assert order.index(stacks.ml.stack_name) > order.index(stacks.api.stack_name)
    assert stacks.api.stack_name in [d.stack_name for d in stacks.ml.dependencies]


def test_dataset_bucket_is_kms_encrypted_tls_only_versioned_private_and_logged(synthesized):
    template = synthesized.template_json("ml")
    [(logical, bucket)] = [(k, r) for k, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket"]
    props = bucket["Properties"]
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "DataKey" in json.dumps(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"])
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                       "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "dataset/"
    assert "AccessLogs" in json.dumps(props["LoggingConfiguration"]["DestinationBucketName"])
    [policy] = _resources(synthesized, "AWS::S3::BucketPolicy").values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in denies]
    # the log bucket (storage stack) lets S3 deliver this bucket's logs, by name pattern and account
    storage_policies = synthesized.template("storage").find_resources("AWS::S3::BucketPolicy")
    statements = [s for p in storage_policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
                  if s.get("Sid") == "AllowDatasetAccessLogs"]
    assert [s["Condition"] for s in statements] == [{
        "ArnLike": {"aws:SourceArn": "arn:aws:s3:::photo-organizer-dev-ml-dataset*"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT}}]
    assert re.fullmatch(r"photo-organizer-dev-ml-dataset", f"photo-organizer-dev-ml-{logical.lower()[:7]}")


def test_feedback_function_reads_only_new_feedback_items_from_the_stream_with_retries_and_a_failure_queue(synthesized):
    settings = synthesized.stacks.settings
    logical, function = _function(synthesized, "photo_organizer.handlers.feedback.handler")
    [mapping] = _resources(synthesized, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": logical}
    assert "StreamArn" in json.dumps(props["EventSourceArn"])
    assert props["BatchSize"] == settings.feedback_batch_size
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == settings.feedback_retry_attempts
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert "FeedbackFailures" in json.dumps(props["DestinationConfig"]["OnFailure"]["Destination"])
    patterns = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert patterns == [{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"entity": {"S": ["feedback"]}}}},
                        # an owner's account erasure finished: the owner's training data goes
                        {"eventName": ["REMOVE"], "dynamodb": {"Keys": {"SK": {"S": ["SETTINGS#erasure"]}}}}]
    assert (function["MemorySize"], function["Timeout"]) == (1024, 300)  # an erasure rewrites the run files
    env = function["Environment"]["Variables"]
    assert env["PO_RETRAINING_PIPELINE"] == PIPELINE
    assert env["PO_RETRAIN_MIN_FEEDBACK"] == str(settings.retrain_min_feedback) == "50"
    assert "Dataset" in json.dumps(env["PO_DATASET_BUCKET"]) and "DataKey" in json.dumps(env["PO_DATASET_KEY_ARN"])
    [queue] = [r for k, r in synthesized.template_json("ml")["Resources"].items()
               if r["Type"] == "AWS::SQS::Queue" and k.startswith("FeedbackFailures")]
    assert "DataKey" in json.dumps(queue["Properties"]["KmsMasterKeyId"])


def test_every_function_failure_and_the_failure_queue_are_alarmed_to_the_topic(synthesized):
    alarms = _resources(synthesized, "AWS::CloudWatch::Alarm")
    names = sorted(re.sub(r"[0-9A-F]{8}$", "", k) for k in alarms)
    assert names == ["ExportFeaturesErrorsAlarm", "FeedbackErrorsAlarm", "FeedbackFailuresAlarm",
                     "ReapplyErrorsAlarm"]
    assert all("photo-organizer-dev-alarms" in json.dumps(a["Properties"]["AlarmActions"]) or
               "AlarmsTopic" in json.dumps(a["Properties"]["AlarmActions"]) for a in alarms.values())


def test_feedback_role_writes_feedback_parts_the_trigger_item_and_starts_only_our_pipeline(synthesized):
    statements = _ml_statements(synthesized, "FeedbackRole")
    assert allowed(statements, "s3:PutObject", f"{DATASET}/feedback/owner=ana/date=2026-12-03/1-9.jsonl")
    assert not allowed(statements, "s3:PutObject", f"{DATASET}/features/photos.jsonl")
    assert allowed(statements, "sagemaker:StartPipelineExecution", PIPELINE_ARN)
    assert allowed(statements, "sagemaker:ListPipelineExecutions", PIPELINE_ARN)
    assert not allowed(statements, "sagemaker:StartPipelineExecution",
                       f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/another")
    state = {"dynamodb:LeadingKeys": "ML#retraining"}
    assert allowed(statements, "dynamodb:UpdateItem", TABLE, state)
    assert not allowed(statements, "dynamodb:UpdateItem", TABLE, {"dynamodb:LeadingKeys": "OWNER#ana"})
    assert not allowed(statements, "dynamodb:PutItem", TABLE, state)
    [stream] = [st for st in statements if "dynamodb:GetRecords" in st["Action"]]
    assert "StreamArn" in json.dumps(stream["Resource"])  # the table's stream only
    assert allowed(statements, "kms:GenerateDataKey", KEY)


def test_feedback_role_erases_an_owner_inside_the_feedback_and_runs_prefixes_only_and_the_api_role_not_at_all(
        synthesized):
    """S3 cannot scope a Lambda role's grant to one owner (the owner is data): the erasure's grant is its prefixes,
    held by the writer of the dataset; the API role, which knows the owner, has nothing of the dataset bucket."""
    statements = _ml_statements(synthesized, "FeedbackRole")
    for key in ("feedback/owner=ana/date=2026-12-03/1-9.jsonl", "feedback/date=2026-11-30/0-9.jsonl",
                "runs/exec1/models/tagging/job/output/model.tar.gz"):
        for action in ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObjectVersion"):
            assert allowed(statements, action, f"{DATASET}/{key}"), (action, key)
    assert allowed(statements, "s3:PutObject", f"{DATASET}/erasures/0123abcd.json")
    assert not allowed(statements, "s3:GetObject", f"{DATASET}/erasures/0123abcd.json")  # listed, never read
    assert not allowed(statements, "s3:DeleteObjectVersion", f"{DATASET}/erasures/0123abcd.json")
    assert not allowed(statements, "s3:DeleteObject", f"{DATASET}/feedback/owner=ana/date=2026-12-03/1-9.jsonl")
    assert not allowed(statements, "s3:DeleteObjectVersion", f"{DATASET}/features/photos.jsonl")
    assert not allowed(statements, "s3:PutBucketVersioning", DATASET)
    for prefix in ("feedback/owner=ana/", "runs/", "erasures/0123abcd.json"):
        for action in ("s3:ListBucket", "s3:ListBucketVersions"):
            assert allowed(statements, action, DATASET, {"s3:prefix": prefix}), (action, prefix)
    assert not allowed(statements, "s3:ListBucketVersions", DATASET, {"s3:prefix": ""})
    api = json.dumps(synthesized.template_json("api"))
    assert "Dataset" not in api and "dataset" not in api.replace("dataset_", "")


def test_export_and_reapply_roles_stay_inside_the_runs_prefix_and_our_model_groups(synthesized):
    export = _ml_statements(synthesized, "ExportFeaturesRole")
    assert allowed(export, "s3:PutObject", f"{DATASET}/runs/abc/features/photos.jsonl")
    assert allowed(export, "s3:GetObject", f"{DATASET}/runs/old/models/tagging/job/output/model.tar.gz")
    assert not allowed(export, "s3:PutObject", f"{DATASET}/feedback/date=2026-12-03/x.jsonl")
    assert allowed(export, "sagemaker:DescribeModelPackage",
                   f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/photo-organizer-dev-tagging/3")
    assert not allowed(export, "sagemaker:DescribeModelPackage",
                       f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/someone-else/3")
    assert allowed(export, "dynamodb:Query", TABLE)
    assert not allowed(export, "dynamodb:PutItem", TABLE)
    reapply = _ml_statements(synthesized, "ReapplyRole")
    assert allowed(reapply, "s3:GetObject", f"{DATASET}/runs/abc/features/photos.jsonl")
    assert not allowed(reapply, "s3:PutObject", f"{DATASET}/runs/abc/features/photos.jsonl")
    assert allowed(reapply, "dynamodb:UpdateItem", TABLE) and allowed(reapply, "dynamodb:PutItem", TABLE)
    assert not allowed(reapply, "dynamodb:DeleteItem", TABLE)
    assert not allowed(reapply, "sagemaker:StartPipelineExecution", PIPELINE_ARN)
    # the erased owners' tombstones, listed only (a model's entry of an erased owner is never applied); the listing
    # comes with grant_read of runs/ (s3:List* on the bucket)
    assert allowed(reapply, "s3:ListBucket", DATASET, {"s3:prefix": "erasures/0123abcd.json"})
    assert not allowed(reapply, "s3:GetObject", f"{DATASET}/erasures/0123abcd.json")


def test_two_model_package_groups_one_per_kind(synthesized):
    groups = sorted(r["Properties"]["ModelPackageGroupName"]
                    for r in _resources(synthesized, "AWS::SageMaker::ModelPackageGroup").values())
    assert groups == ["photo-organizer-dev-faces", "photo-organizer-dev-tagging"]


def test_pipeline_definition_is_the_generated_one_with_cloudformation_references_swapped_in(synthesized):
    [(logical, pipeline)] = _resources(synthesized, "AWS::SageMaker::Pipeline").items()
    props = pipeline["Properties"]
    assert props["PipelineName"] == PIPELINE
    assert props["RoleArn"]["Fn::GetAtt"][0].startswith("SageMakerExecutionRole")
    assert sorted(d for d in pipeline["DependsOn"] if "Models" in d) == ["FacesModels", "TaggingModels"]
    definition = _definition(synthesized)
    text = json.dumps(definition)
    assert "po-sentinel" not in text
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert list(steps) == ["ExportFeatures", "Preprocess", "TrainTagging", "TrainFaces", "Evaluate", "CheckTagging",
                           "CheckFaces"]
    assert re.fullmatch(r"<ExportFeaturesFunction[0-9A-F]{8}\.Arn>", steps["ExportFeatures"]["FunctionArn"])
    role = re.compile(r"<SageMakerExecutionRole[0-9A-F]{8}\.Arn>")
    key = re.compile(r".*GetAtt.*DataKey.*")  # a weak cross-stack reference to the storage stack's key
    for name in ("Preprocess", "Evaluate"):
        args = steps[name]["Arguments"]
        assert role.fullmatch(args["RoleArn"]) and args["NetworkConfig"]["EnableNetworkIsolation"] is True
        assert key.fullmatch(args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"])
        assert key.fullmatch(args["ProcessingOutputConfig"]["KmsKeyId"])
        inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in args["ProcessingInputs"]}
        assert inputs["code"].endswith("/run_packaged.py") and inputs["source"].endswith("/sourcedir.tar.gz")
    for name in ("TrainTagging", "TrainFaces"):
        args = steps[name]["Arguments"]
        assert role.fullmatch(args["RoleArn"]) and args["EnableNetworkIsolation"] is True
        assert key.fullmatch(args["ResourceConfig"]["VolumeKmsKeyId"]) and key.fullmatch(args["OutputDataConfig"]["KmsKeyId"])
        assert "<Dataset" in json.dumps(args["OutputDataConfig"]["S3OutputPath"])
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert parameters == {"ProcessingInstanceType": "ml.m5.large", "TrainingInstanceType": "ml.m5.large",
                          "PromotionMargin": 0.01, "MinHeldOutExamples": 10, "MinFeedbackPerOwner": 10}
    reapply = steps["CheckFaces"]["Arguments"]["IfSteps"][1]
    assert re.fullmatch(r"<ReapplyFunction[0-9A-F]{8}\.Arn>", reapply["FunctionArn"])


def test_execution_role_least_privilege(synthesized):
    template = synthesized.template_json("ml")
    [role] = [r for k, r in template["Resources"].items()
              if r["Type"] == "AWS::IAM::Role" and k.startswith("SageMakerExecutionRole")]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    assert trust[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert not role["Properties"].get("ManagedPolicyArns")
    statements = _ml_statements(synthesized, "SageMakerExecutionRole")
    assert allowed(statements, "s3:GetObject", f"{DATASET}/feedback/date=2026-12-03/1-9.jsonl")
    assert allowed(statements, "s3:PutObject", f"{DATASET}/runs/abc/sets/train/ana/tagging.jsonl")
    assert not allowed(statements, "s3:PutObject", f"{DATASET}/feedback/date=2026-12-03/forged.jsonl")
    assert allowed(statements, "s3:ListBucket", DATASET, {"s3:prefix": "runs/abc/features"})
    assert not allowed(statements, "s3:ListBucket", DATASET, {"s3:prefix": "other/"})
    assert not allowed(statements, "s3:GetObject", "arn:aws:s3:::originals-bucket/originals/ana/p1")
    assert allowed(statements, "kms:Decrypt", KEY) and allowed(statements, "kms:GenerateDataKey", KEY)
    assert allowed(statements, "kms:CreateGrant", KEY, {"kms:GrantIsForAWSResource": "true"})
    assert not allowed(statements, "kms:CreateGrant", KEY)
    jobs = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    assert allowed(statements, "sagemaker:CreateTrainingJob", f"{jobs}:training-job/pipelines-abc-traintagging-x1")
    assert allowed(statements, "sagemaker:CreateProcessingJob", f"{jobs}:processing-job/pipelines-abc-preprocess-x1")
    assert not allowed(statements, "sagemaker:CreateTrainingJob", f"{jobs}:training-job/anything-else")
    assert allowed(statements, "sagemaker:CreateModelPackage", f"{jobs}:model-package/photo-organizer-dev-faces/4")
    assert not allowed(statements, "sagemaker:CreateModelPackage", f"{jobs}:model-package/other-group/1")
    assert not allowed(statements, "sagemaker:CreateEndpoint", f"{jobs}:endpoint/x")
    assert allowed(statements, "ecr:BatchGetImage",
                   "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-scikit-learn")
    assert not allowed(statements, "ecr:BatchGetImage", "arn:aws:ecr:eu-west-1:141502667606:repository/other")
    assert allowed(statements, "logs:PutLogEvents",
                   f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs:log-stream:x")
    pass_role = [s for s in statements if "iam:PassRole" in json.dumps(s["Action"])]
    assert len(pass_role) == 1
    assert pass_role[0]["Resource"]["Fn::GetAtt"][0].startswith("SageMakerExecutionRole")
    assert pass_role[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    invoke = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert sorted(r["Fn::GetAtt"][0][:13] for s in invoke for r in s["Resource"]) == ["ExportFeature", "ReapplyFuncti"]


def test_job_source_tarball_holds_the_scripts_and_the_learning_package_only():
    from stacks.ml import source_files, source_tarball

    first, second = source_tarball(), source_tarball()
    assert first == second  # deterministic: an unchanged tree keeps its asset hash
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        names = tar.getnames()
    assert {"run_packaged.py", "preprocess.py", "train_tagging.py", "train_faces.py", "evaluate.py"} <= set(names)
    assert "photo_organizer/__init__.py" in names and "photo_organizer/learning/datasets.py" in names
    assert all(n.count("/") == 0 or n.startswith("photo_organizer/learning/") or n == "photo_organizer/__init__.py"
               for n in names), names
    assert len(names) == len(source_files())
