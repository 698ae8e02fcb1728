from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from stacks.analysis import DOMAIN_PACKAGE_EXCLUDED, MINILM_FILES, MODELS_PACKAGE

pytestmark = pytest.mark.infrastructure


def _jobs(synthesized) -> dict[str, dict]:
    jobs = synthesized.template("analysis").find_resources("AWS::Glue::Job")
    return {job["Properties"]["Name"]: job["Properties"] for job in jobs.values()}


def _role_statements(synthesized, role_prefix: str) -> list[dict]:
    policies = synthesized.template("analysis").find_resources("AWS::IAM::Policy")
    return [s for lid, policy in policies.items() if lid.startswith(role_prefix)
            for s in policy["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_both_jobs_are_glue_5_pyspark_sized_from_settings(synthesized):
    settings = synthesized.stacks.settings
    jobs = _jobs(synthesized)
    assert set(jobs) == {"photo-organizer-dev-analyze-photos", "photo-organizer-dev-cluster-faces"}
    for name, job in jobs.items():
        assert job["GlueVersion"] == "5.0", name
        assert job["Command"]["Name"] == "glueetl" and job["Command"]["PythonVersion"] == "3", name
        assert job["WorkerType"] == settings.glue_worker_type == "G.1X", name
        assert job["NumberOfWorkers"] == settings.glue_number_of_workers == 2, name
        assert job["MaxRetries"] == 0 and job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}, name
        assert job["SecurityConfiguration"]["Ref"].startswith("SecurityConfiguration"), name


def test_analyze_job_arguments(synthesized):
    settings = synthesized.stacks.settings
    args = _jobs(synthesized)["photo-organizer-dev-analyze-photos"]["DefaultArguments"]
    assert "Table" in str(args["--table"]) and "Derivatives" in str(args["--previews-bucket"])
    assert "Derivatives" in str(args["--summary-bucket"]) and args["--summary-prefix"] == "runs/analyze_photos"
    assert args["--analysis-version"] == str(settings.analysis_version)
    assert args["--account-tps"] == str(settings.analysis_account_tps)
    assert args["--workers"] == "4"  # (2 workers - the driver) x 4 vCPUs of G.1X
    assert args["--collection-prefix"] == "photo-organizer-dev-faces"
    assert args["--metrics-namespace"] == "PhotoOrganizer/Analysis"
    assert args["--enable-metrics"] == "" and args["--enable-continuous-cloudwatch-log"] == "true"
    assert args["--job-bookmark-option"] == "job-bookmark-disable"
    assert args["--python-modules-installer-option"] == "--no-index"
    # the domain package zip, the packed MiniLM model zip, the label model zip and the job's own modules zip
    extra = args["--extra-py-files"].split(",")
    assert len(extra) == 4 and all(f.startswith("s3://cdk-") and f.endswith(".zip") for f in extra)


def test_analyze_job_stores_vectors_with_the_packed_model_it_is_given(synthesized):
    stack = synthesized.stacks.analysis
    args = _jobs(synthesized)["photo-organizer-dev-analyze-photos"]["DefaultArguments"]
    assert args["--embeddings"] == "true"
    model_zip = f"s3://cdk-hnb659fds-assets-111111111111-eu-west-1/{stack.embedding_model.asset_hash}.zip"
    assert model_zip in args["--extra-py-files"].split(",")
    # The zip holds the model package of the Lambda build and nothing else of it (no handlers, no numpy).
    staged = synthesized.assembly_dir / f"asset.{stack.embedding_model.asset_hash}"
    assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()) == [
        "photo_organizer_models/__init__.py", "photo_organizer_models/minilm/manifest.json",
        "photo_organizer_models/minilm/model.safetensors", "photo_organizer_models/minilm/vocab.txt"]
    cluster = _jobs(synthesized)["photo-organizer-dev-cluster-faces"]["DefaultArguments"]
    assert model_zip not in cluster["--extra-py-files"] and "--embeddings" not in cluster


def test_analyze_job_computes_image_embeddings_with_the_label_model_it_is_given(synthesized, stub_label_model):
    stack = synthesized.stacks.analysis
    args = _jobs(synthesized)["photo-organizer-dev-analyze-photos"]["DefaultArguments"]
    assert args["--image-embeddings"] == "true"
    model_zip = f"s3://cdk-hnb659fds-assets-111111111111-eu-west-1/{stack.label_model.asset_hash}.zip"
    assert model_zip in args["--extra-py-files"].split(",")
    # The zip is the data-only package bootstrap.glue.label_model reads: the exported model and its sidecar.
    staged = synthesized.assembly_dir / f"asset.{stack.label_model.asset_hash}"
    assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()) == [
        "photo_organizer_label_model/__init__.py", "photo_organizer_label_model/efficientnet_lite0.json",
        "photo_organizer_label_model/efficientnet_lite0.onnx"]
    assert (staged / "photo_organizer_label_model" / "efficientnet_lite0.onnx").read_bytes() == \
        stub_label_model.read_bytes()
    cluster = _jobs(synthesized)["photo-organizer-dev-cluster-faces"]["DefaultArguments"]
    assert model_zip not in cluster["--extra-py-files"] and "--image-embeddings" not in cluster
    key = f"{stack.label_model.asset_hash}.zip"
    reads = [s for s in _role_statements(synthesized, "AnalyzePhotosRole") if key in json.dumps(s["Resource"])]
    assert reads and all(not a.startswith(("s3:Put", "s3:Delete")) for s in reads for a in _actions(s))


def test_synth_refuses_without_the_exported_label_model(tmp_path):
    from stacks.analysis import LabelModelMissingError, _label_model
    from stacks.settings import Settings

    with pytest.raises(LabelModelMissingError, match="make label-model"):
        _label_model(Settings(label_model_file=str(tmp_path / "efficientnet_lite0.onnx")))


def test_the_job_role_may_read_the_model_zip_object_only(synthesized):
    key = f"{synthesized.stacks.analysis.embedding_model.asset_hash}.zip"
    reads = [s for s in _role_statements(synthesized, "AnalyzePhotosRole") if key in json.dumps(s["Resource"])]
    assert reads and all(not a.startswith(("s3:Put", "s3:Delete")) for s in reads for a in _actions(s))
    cluster = _role_statements(synthesized, "ClusterFacesRole")
    assert not [s for s in cluster if key in json.dumps(s["Resource"])]


def _asset_files(synthesized) -> dict[str, Path]:
    """S3 object key -> the file the cloud assembly would upload there (cdk-assets reads the same manifest)."""
    stack = synthesized.stacks.analysis
    manifest = json.loads((synthesized.assembly_dir / f"{stack.artifact_id}.assets.json").read_text())
    return {destination["objectKey"]: synthesized.assembly_dir / entry["source"]["path"]
            for entry in manifest["files"].values() for destination in entry["destinations"].values()}


@pytest.mark.parametrize("job", ["photo-organizer-dev-analyze-photos", "photo-organizer-dev-cluster-faces"])
def test_additional_python_modules_are_exactly_the_built_wheels_shipped_under_their_own_names(
        synthesized, stub_glue_deps_dir, job):
    """Every --additional-python-modules entry is an S3 wheel of this stack's assets whose object is the built wheel
    (byte for byte) under its own file name: no module name for pip to resolve, no sdist to compile at job start."""
    args = _jobs(synthesized)[job]["DefaultArguments"]
    entries = args["--additional-python-modules"].split(",")
    assets = _asset_files(synthesized)
    bucket = "cdk-hnb659fds-assets-111111111111-eu-west-1"
    assert all(e.startswith(f"s3://{bucket}/") and e.endswith(".whl") for e in entries), entries
    keys = [e.removeprefix(f"s3://{bucket}/") for e in entries]
    built = json.loads((stub_glue_deps_dir / "manifest.json").read_text())["wheels"]
    assert sorted(key.rsplit("/", 1)[-1] for key in keys) == sorted(w["file"] for w in built)
    for key in keys:
        shipped = assets[key]
        assert shipped.is_file() and shipped.read_bytes() == (stub_glue_deps_dir / "wheels" / shipped.name).read_bytes()
        # content-addressed like every CDK asset: the prefix is the wheel's sha256
        assert key.split("/")[0] == hashlib.sha256(shipped.read_bytes()).hexdigest()[:16]
    assert args["--python-modules-installer-option"] == "--no-index"


def test_the_job_roles_may_read_the_wheel_objects(synthesized):
    wheel_keys = [url.split("/", 3)[3] for url in _jobs(synthesized)["photo-organizer-dev-analyze-photos"][
        "DefaultArguments"]["--additional-python-modules"].split(",")]
    for role in ("AnalyzePhotosRole", "ClusterFacesRole"):
        reads = json.dumps([s for s in _role_statements(synthesized, role) if "s3:GetObject*" in _actions(s)])
        assert all(key in reads for key in wheel_keys), role


def test_synth_refuses_a_glue_build_without_its_wheels(tmp_path):
    from stacks.analysis import GlueDependenciesMissingError, _glue_deps
    from stacks.settings import Settings

    with pytest.raises(GlueDependenciesMissingError, match="build_glue_deps.py"):
        _glue_deps(Settings(glue_deps_dir=str(tmp_path)))
    (tmp_path / "manifest.json").write_text(json.dumps({"wheels": [{"file": "x-1-py3-none-any.whl", "sha256": "0"}]}))
    with pytest.raises(GlueDependenciesMissingError, match="lacks x-1-py3-none-any.whl"):
        _glue_deps(Settings(glue_deps_dir=str(tmp_path)))


def test_synth_refuses_a_lambda_build_without_the_packed_model(tmp_path):
    from stacks.analysis import EmbeddingModelMissingError, _lambda_build_with_model
    from stacks.settings import Settings

    (tmp_path / "index.py").write_text("")
    with pytest.raises(EmbeddingModelMissingError, match="make lambda-build"):
        _lambda_build_with_model(Settings(lambda_code_dir=str(tmp_path)))


def test_cluster_job_arguments_match_what_its_script_parses(synthesized):
    settings = synthesized.stacks.settings
    args = _jobs(synthesized)["photo-organizer-dev-cluster-faces"]["DefaultArguments"]
    assert "Table" in str(args["--table"]) and "Derivatives" in str(args["--summary-bucket"])
    assert args["--summary-prefix"] == "runs/cluster_faces"
    assert args["--account-tps"] == str(settings.analysis_account_tps) and args["--workers"] == "4"
    assert args["--collection-prefix"] == "photo-organizer-dev-faces"
    assert "--previews-bucket" not in args  # SearchFaces reads the collection, never an image


def test_domain_package_leaves_out_what_the_lambda_build_leaves_out():
    spec = importlib.util.spec_from_file_location("build_lambda", "scripts/build_lambda.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DOMAIN_PACKAGE_EXCLUDED == module.EXCLUDED
    assert (MODELS_PACKAGE, MINILM_FILES) == (module.MODELS_PACKAGE, module.MINILM_FILES)


def test_security_configuration_encrypts_s3_logs_and_bookmarks_with_the_cmk(synthesized):
    config = next(iter(synthesized.template("analysis").find_resources(
        "AWS::Glue::SecurityConfiguration").values()))["Properties"]["EncryptionConfiguration"]
    assert config["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert config["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert config["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    for key_arn in (config["S3Encryptions"][0]["KmsKeyArn"], config["CloudWatchEncryption"]["KmsKeyArn"],
                    config["JobBookmarksEncryption"]["KmsKeyArn"]):
        assert "DataKey" in str(key_arn)


def test_key_policy_lets_cloudwatch_logs_use_the_key_for_glue_log_groups_only(synthesized):
    synthesized.template("storage").has_resource_properties("AWS::KMS::Key", {
        "KeyPolicy": {"Statement": Match.array_with([Match.object_like({
            "Sid": "AllowGlueJobLogGroups",
            "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                      "arn:aws:logs:eu-west-1:111111111111:log-group:/aws-glue/jobs*"}},
        })])},
    })


def test_rekognition_is_limited_to_our_collections_except_the_detect_apis(synthesized):
    statements = _role_statements(synthesized, "AnalyzePhotosRole")
    collection = next(s for s in statements if "rekognition:IndexFaces" in _actions(s))
    assert collection["Resource"] == "arn:aws:rekognition:eu-west-1:111111111111:collection/photo-organizer-dev-faces-*"
    assert set(_actions(collection)) == {
        "rekognition:IndexFaces", "rekognition:SearchFaces", "rekognition:ListFaces", "rekognition:DeleteFaces",
        "rekognition:CreateCollection", "rekognition:DeleteCollection", "rekognition:DescribeCollection"}
    detect = [s for s in statements if s["Resource"] == "*" and any(a.startswith("rekognition:") for a in _actions(s))]
    assert [set(_actions(s)) for s in detect] == [
        {"rekognition:DetectLabels", "rekognition:DetectText", "rekognition:DetectModerationLabels"}]
    cluster = _role_statements(synthesized, "ClusterFacesRole")
    assert not [s for s in cluster if any(a.startswith("rekognition:Detect") for a in _actions(s))]


def test_metrics_are_pinned_to_our_namespace(synthesized):
    for role in ("AnalyzePhotosRole", "ClusterFacesRole"):
        metrics = [s for s in _role_statements(synthesized, role) if "cloudwatch:PutMetricData" in _actions(s)]
        assert metrics == [{"Action": "cloudwatch:PutMetricData", "Effect": "Allow", "Resource": "*", "Condition": {
            "StringEquals": {"cloudwatch:namespace": ["PhotoOrganizer/Analysis", "Glue"]}}}], role


def test_s3_access_is_previews_read_and_own_summary_prefix_write(synthesized):
    statements = _role_statements(synthesized, "AnalyzePhotosRole")
    resources = [str(s["Resource"]) for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    object_paths = [r for r in resources if "Derivatives" in r and "/*" in r]
    assert object_paths and all("/previews/*" in r or "/runs/analyze_photos/*" in r for r in object_paths)
    cluster = _role_statements(synthesized, "ClusterFacesRole")
    assert not any("/previews/*" in str(s["Resource"]) for s in cluster)


def test_nightly_schedule_trigger_and_clustering_after_analysis(synthesized):
    triggers = {t["Properties"]["Name"]: t["Properties"]
                for t in synthesized.template("analysis").find_resources("AWS::Glue::Trigger").values()}
    nightly = triggers["photo-organizer-dev-analyze-photos-nightly"]
    assert nightly["Type"] == "SCHEDULED" and nightly["StartOnCreation"] is True
    assert nightly["Schedule"] == synthesized.stacks.settings.analysis_schedule == "cron(0 2 * * ? *)"
    assert nightly["Actions"][0]["JobName"]["Ref"].startswith("AnalyzePhotos")
    after = triggers["photo-organizer-dev-cluster-faces-after-analysis"]
    assert after["Type"] == "CONDITIONAL"
    assert after["Predicate"]["Conditions"][0]["State"] == "SUCCEEDED"


def test_job_names_are_outputs_for_on_demand_runs(synthesized):
    outputs = synthesized.template_json("analysis")["Outputs"]
    assert {"AnalyzePhotosJobName", "ClusterFacesJobName"} <= set(outputs)


def test_cluster_job_is_skipped_while_its_script_is_missing(synthesized_serverless):
    jobs = synthesized_serverless.template("analysis").find_resources("AWS::Glue::Job")
    assert [j["Properties"]["Name"] for j in jobs.values()] == ["photo-organizer-dev-analyze-photos"]
    assert "ClusterFacesJobName" not in synthesized_serverless.template_json("analysis")["Outputs"]
    assert synthesized_serverless.stacks.analysis.outputs.cluster_job_name is None



def _sagemaker_statements(synthesized) -> list[dict]:
    return [s for prefix in ("AnalyzePhotosRole", "ClusterFacesRole") for s in _role_statements(synthesized, prefix)
            if any(a.startswith("sagemaker:") for a in _actions(s))]


def _caption_endpoint_the_job_parses(synthesized, monkeypatch) -> str | None:
    """The synthesized DefaultArguments through the real script's parser (Refs stand in as plain names)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "glue_jobs"))
    monkeypatch.delenv("PO_CAPTION_ENDPOINT", raising=False)
    from analyze_photos.job import parse_args

    args = _jobs(synthesized)["photo-organizer-dev-analyze-photos"]["DefaultArguments"]
    argv = [item for name, value in args.items() for item in (name, value if isinstance(value, str) else "ref")]
    return parse_args(argv).caption_endpoint


def test_without_a_caption_endpoint_the_job_gets_no_argument_and_no_role_may_call_sagemaker(
        synthesized, monkeypatch):
    assert synthesized.stacks.settings.caption_endpoint_name == ""
    assert "--caption-endpoint" not in _jobs(synthesized)["photo-organizer-dev-analyze-photos"]["DefaultArguments"]
    assert _caption_endpoint_the_job_parses(synthesized, monkeypatch) is None
    assert _sagemaker_statements(synthesized) == []


def test_a_caption_endpoint_setting_reaches_the_job_and_its_role_may_invoke_that_endpoint_only(
        synthesized_serverless, monkeypatch):
    assert _caption_endpoint_the_job_parses(synthesized_serverless, monkeypatch) == "photo-captions"
    assert _sagemaker_statements(synthesized_serverless) == [{
        "Action": "sagemaker:InvokeEndpoint", "Effect": "Allow",
        "Resource": "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/photo-captions",
    }]
