"""Put on PYTHONPATH of a Glue job's spark-submit (tests/cloud/test_glue_as_deployed.py): every Python process of
the job (driver and Spark's Python workers, which inherit the environment) records each AWS call it makes with the
rehearsal worker's botocore hook (../worker.py, loaded as it is), one JSON line per call appended to the file
named by REHEARSAL_CALLS_FILE. Nothing happens without that variable."""

import importlib.util
import json
import os
from pathlib import Path


class _AppendedCalls(list):
    """worker.CALLS, written through: one write() of one line per call, O_APPEND, opened per call (fork-safe;
    the processes of one job append to the same file)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def append(self, call) -> None:
        line = json.dumps({**call, "pid": os.getpid()}, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _install(path: str) -> None:
    spec = importlib.util.spec_from_file_location("_rehearsal_worker", Path(__file__).resolve().parents[1] / "worker.py")
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    worker.CALLS = _AppendedCalls(path)
    worker._install_recorder()


if os.environ.get("REHEARSAL_CALLS_FILE"):
    _install(os.environ["REHEARSAL_CALLS_FILE"])
