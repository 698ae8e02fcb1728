"""Every AWS::Lambda::Function of the templates, run as deployed: its Handler imported from its staged code directory
in a worker subprocess (rehearsal/worker.py) that sees only that directory and the standard library, with its
template environment (Refs and GetAtts resolved to the moto resources), the variables the Lambda runtime sets, and
credentials of its role assumed in moto (the role carries exactly the synthesized statements).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("worker.py")


class FunctionInitError(RuntimeError):
    """The handler could not be imported from the bundle (a packaging miss or a configuration error at import)."""


@dataclass
class Invocation:
    result: Any
    error: dict | None
    calls: list[dict]

    def raise_for_error(self) -> Any:
        if self.error:
            raise AssertionError(f"the function raised {self.error['type']}: {self.error['message']}\n"
                                 f"{self.error['traceback']}")
        return self.result


@dataclass
class DeployedFunction:
    stack: str
    logical_id: str
    name: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    role_name: str
    role_arn: str
    timeout: int
    memory: int
    log_file: Path
    calls: list[dict] = field(default_factory=list)  # every AWS call of every invocation, in order
    access_keys: set[str] = field(default_factory=set)
    _process: subprocess.Popen | None = None

    def start(self, credentials: dict[str, str], extra_env: dict[str, str]) -> None:
        self.access_keys.add(credentials["AccessKeyId"])
        env = {
            # What the Lambda runtime sets (python3.12 runtime), then the template's variables on top.
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": self.handler,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
            "REHEARSAL_TIMEOUT_SECONDS": str(self.timeout),
            **extra_env,
            **self.environment,
        }
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            # -I: no PYTHON* variables, no user site, no script directory; -S: no site-packages; -B: no __pycache__
            # written into the staged code directory (-I also ignores PYTHONDONTWRITEBYTECODE).
            [sys.executable, "-I", "-S", "-B", str(WORKER), str(self.code_dir), self.handler],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, text=True, bufsize=1,
        )
        log.close()
        first = self._read()
        if "init_error" in first:
            raise FunctionInitError(f"{self.logical_id} ({self.handler}) failed to start from {self.code_dir.name}: "
                                    f"{first['init_error']['type']}: {first['init_error']['message']}\n"
                                    f"{first['init_error']['traceback']}")
        self.sys_path = first["sys_path"]

    def _read(self) -> dict:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise FunctionInitError(f"{self.logical_id} worker exited ({self._process.poll()}); log: {self.log_file}")
        return json.loads(line)

    def invoke(self, event: dict) -> Invocation:
        assert self._process is not None and self._process.stdin is not None, "function not started"
        self._process.stdin.write(json.dumps({"event": event}) + "\n")
        self._process.stdin.flush()
        answer = self._read()
        self.calls.extend(answer["calls"])
        return Invocation(answer["result"], answer["error"], answer["calls"])

    def stop(self) -> None:
        if self._process is not None:
            if self._process.stdin:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None
