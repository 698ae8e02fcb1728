"""Makes glue_jobs/<job>/ importable as a top-level package (`import analyze_photos.transforms`), the way Glue
sees a job's own modules; glue_jobs itself stays a plain folder, never a package that could shadow another."""

import sys
from pathlib import Path

GLUE_JOBS = Path(__file__).resolve().parents[2] / "glue_jobs"
if str(GLUE_JOBS) not in sys.path:
    sys.path.insert(0, str(GLUE_JOBS))


# ---- the Glue job under local PySpark: moto server, Rekognition stand-in, one Spark session ------------------------
# Spark's Python workers are separate processes: moto's in-process mock_aws cannot reach them, so AWS is a moto
# server on loopback and every process finds it through the endpoint variables botocore honours.

import os  # noqa: E402

import pytest  # noqa: E402

REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@pytest.fixture(scope="session")
def moto_server():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def rekognition_standin():
    from rekognition_standin import RekognitionStandin

    standin = RekognitionStandin().start()
    yield standin
    standin.stop()


@pytest.fixture(scope="session")
def aws_endpoint_env(moto_server, rekognition_standin) -> dict[str, str]:
    """What every process (driver and Spark workers) needs to find the fakes; no real credentials anywhere."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ENDPOINT_URL_REKOGNITION": rekognition_standin.endpoint_url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture
def aws_driver_env(aws_endpoint_env, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The same variables in this (driver) process, for this test only."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in aws_endpoint_env.items():
        monkeypatch.setenv(name, value)
    return aws_endpoint_env


@pytest.fixture(scope="session")
def spark(aws_endpoint_env):
    pytest.importorskip("pyspark", reason="pyspark 3.5 (Glue 5) is a dev extra: install it to run the Glue job tests")
    from pyspark.sql import SparkSession

    # Read when the JVM starts: bind Spark to loopback only.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Workers must run this venv's interpreter; pyspark reads the variable, not spark.pyspark.python, when the
    # session is built from Python rather than through spark-submit.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    worker_path = os.pathsep.join([str(GLUE_JOBS), str(GLUE_JOBS.parent / "lambdas"), str(Path(__file__).parent)])
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("photo-organizer-glue-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.executorEnv.PYTHONPATH", worker_path)
    )
    for name, value in aws_endpoint_env.items():
        builder = builder.config(f"spark.executorEnv.{name}", value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
