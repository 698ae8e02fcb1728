"""The retraining ports: running a script-mode training/evaluation script, and the registry of model versions.

Both backends run the same scripts (`sagemaker/*.py`): SageMaker in the cloud (the pipeline), subprocesses with
the script-mode environment locally (the Trainer). The cloud's registry is SageMaker's Model Registry, driven by
the pipeline; the ModelRegistry port is what the local backend and the re-application read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class ScriptRun:
    """One script-mode run: SM_CHANNEL_<NAME> = channels[name], SM_MODEL_DIR, SM_OUTPUT_DATA_DIR,
    SM_HP_<NAME> and the hyperparameters as `--name value` arguments (SageMaker passes both)."""

    script: str  # file name under sagemaker/, e.g. "train_tagging.py"
    channels: Mapping[str, Path]
    model_dir: Path
    output_dir: Path
    hyperparameters: Mapping[str, str]


class Trainer(Protocol):
    def run(self, job: ScriptRun, *, on_line: Callable[[str], None] | None = None) -> None:
        """Runs the script to completion; TrainingFailedError (with the script's last lines) when it fails."""
        ...


@dataclass(frozen=True)
class ModelVersion:
    kind: str  # "tagging" | "faces"
    version: int
    path: Path  # the directory holding the model files
    metrics: Mapping[str, Any]
    approved: bool


class ModelRegistry(Protocol):
    def approved(self, kind: str) -> ModelVersion | None:
        """The approved (promoted) version of a model kind, None before the first promotion."""
        ...

    def register(self, kind: str, model_dir: Path, metrics: Mapping[str, Any], *, approve: bool) -> ModelVersion:
        """Copies the model in as the next version; with approve, makes it the approved one. The approved pointer
        moves last and atomically: a crash part-way leaves the previous approved version in place."""
        ...

    def versions(self, kind: str) -> list[ModelVersion]: ...
