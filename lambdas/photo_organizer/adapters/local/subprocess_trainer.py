"""Trainer: a `sagemaker/<script>` run as a subprocess of the current interpreter, in SageMaker's script mode.

The same scripts run in SageMaker (the pipeline's Processing and Training steps); here the environment is what
SageMaker would set: SM_MODEL_DIR, SM_OUTPUT_DATA_DIR, SM_CHANNEL_<NAME> per input channel, SM_CHANNELS,
SM_HPS and SM_HP_<NAME> per hyperparameter, plus the hyperparameters as `--name value` arguments. PYTHONPATH
holds the project's `lambdas` folder, as the pipeline's source tarball holds photo_organizer/learning.

Output lines stream to `on_line` as they come; a non-zero exit raises TrainingFailedError with the last lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path

from photo_organizer.errors import ConfigurationError, TrainingFailedError
from photo_organizer.ports.training import ScriptRun

TAIL_LINES = 20
DEFAULT_TIMEOUT_SECONDS = 3600.0


class SubprocessTrainer:
    def __init__(
        self,
        scripts_dir: Path,
        *,
        python_path: Path | None = None,
        python: str = sys.executable,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.scripts_dir = Path(scripts_dir)
        # The folder holding the photo_organizer package (`lambdas` in the repository).
        self._python_path = python_path
        self._python = python
        self._timeout = timeout_seconds
        self._extra_env = dict(extra_env or {})

    def available(self, script: str) -> bool:
        return (self.scripts_dir / script).is_file()

    def run(self, job: ScriptRun, *, on_line: Callable[[str], None] | None = None) -> None:
        script = self.scripts_dir / job.script
        if not script.is_file():
            raise ConfigurationError(f"training script {job.script} is missing from {self.scripts_dir}")
        job.model_dir.mkdir(parents=True, exist_ok=True)
        job.output_dir.mkdir(parents=True, exist_ok=True)
        command = [self._python, "-u", str(script)]
        for name, value in job.hyperparameters.items():
            command += [f"--{name}", str(value)]
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        try:
            process = subprocess.Popen(
                command,
                env=self._environment(job),
                cwd=str(job.output_dir),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            raise TrainingFailedError(f"{job.script} could not start: {exc}") from exc
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                if on_line is not None:
                    on_line(line)
            code = process.wait(timeout=self._timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.wait()
            raise TrainingFailedError(f"{job.script} ran longer than {self._timeout:.0f} s") from exc
        except BaseException:
            process.kill()  # Ctrl-C or a failing on_line: never leave the script running
            process.wait()
            raise
        finally:
            process.stdout.close()
        if code != 0:
            last = "\n".join(tail)
            raise TrainingFailedError(f"{job.script} exited with {code}; last lines:\n{last}")

    def _environment(self, job: ScriptRun) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "PYTHONPATH"))}
        paths = [str(self.scripts_dir)]
        if self._python_path is not None:
            paths.append(str(self._python_path))
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env["SM_MODEL_DIR"] = str(job.model_dir)
        env["SM_OUTPUT_DATA_DIR"] = str(job.output_dir)
        env["SM_CHANNELS"] = json.dumps(sorted(job.channels))
        for name, path in job.channels.items():
            env[f"SM_CHANNEL_{name.upper()}"] = str(path)
        env["SM_HPS"] = json.dumps(dict(job.hyperparameters))
        for name, value in job.hyperparameters.items():
            env[f"SM_HP_{name.upper().replace('-', '_')}"] = str(value)
        env.update(self._extra_env)
        return env
