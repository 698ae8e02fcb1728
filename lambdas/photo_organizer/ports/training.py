"""The retraining ports: running a script-mode training/evaluation script, and the registry of model versions.

Both backends run the same scripts (`sagemaker/*.py`): SageMaker in the cloud (the pipeline), subprocesses with
the script-mode environment locally (the Trainer). The cloud's registry is SageMaker's Model Registry, driven by
the pipeline; the ModelRegistry port is what the local backend and the re-application read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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


# ---- the cloud's retraining: the trigger, the pipeline, and the run's artefacts ------------------------------------


class RetrainingTriggerStore(Protocol):
    """The trigger's counter and lock: one item (`PK=ML#retraining`, `SK=STATE`) written with conditional writes."""

    def count(self, events: int, *, batch: str) -> int:
        """Adds `events` new feedback events (once per batch id: a retried batch is not counted twice); returns the
        events counted since the last start."""
        ...

    def acquire(self, holder: str, *, now: datetime, lease: timedelta) -> bool:
        """Takes the lock for `lease` when it is free or its lease ran out; False when someone else holds it."""
        ...

    def started(self, holder: str, *, execution: str, consumed: int, now: datetime) -> None:
        """Records the started execution, takes `consumed` off the counter and releases the lock."""
        ...

    def release(self, holder: str) -> None: ...


class PipelineRuns(Protocol):
    """The retraining pipeline's executions (SageMaker Pipelines in the cloud)."""

    def running(self) -> list[str]:
        """The executions that are still going (Executing or Stopping)."""
        ...

    def start(self, *, token: str, display_name: str) -> str:
        """Starts an execution (idempotent per token); returns its id (ARN)."""
        ...


class RunArtifacts(Protocol):
    """One pipeline execution's files in the dataset bucket (`runs/<run>/...`) and the models it reads."""

    def write_features(self, run: str, name: str, lines: Iterable[str]) -> int:
        """Writes `features/<name>` of the run (JSON Lines); returns the number of lines."""
        ...

    def read_features(self, run: str, name: str) -> Iterator[str]: ...

    def stage_approved(self, run: str, kind: str, model_data: str | None) -> None:
        """Puts the approved model's artefact (None: none approved yet, an empty marker) under approved/<kind>/."""
        ...

    def model_document(self, model_data: str) -> dict[str, Any]:
        """model.json out of a training job's model.tar.gz."""
        ...


class ApprovedModels(Protocol):
    """The model registry of the cloud (SageMaker model package groups)."""

    def latest_approved(self, group: str) -> str | None:
        """The model data (s3:// URI) of the newest Approved package of the group, None when there is none."""
        ...


@dataclass
class OwnerErasure:
    """What taking one owner out of a store's training data did."""

    removed: int = 0  # lines / model entries of the owner taken out
    objects: int = 0  # files rewritten or deleted
    versions_deleted: int = 0  # older versions of them deleted (a versioned bucket keeps what it replaced)
    unreadable: list[str] = field(default_factory=list)  # files naming the owner in a shape that cannot be stripped


class OwnerDataEraser(Protocol):
    """Training data of many owners from which one owner is taken out (the cloud's dataset bucket: the feedback
    lines, the run files and models)."""

    def erase_owner(self, owner: str) -> OwnerErasure:
        """Idempotent; the other owners' data stays as it was."""
        ...


class TrainingFiles(OwnerDataEraser, Protocol):
    """Training files of many owners kept beside a library (the local retraining's model versions, feature snapshot
    and unfinished runs): account erasure takes the owner out (ConflictError while a retraining runs: call again
    when it finished), and its audit lists what still names the owner."""

    def files_naming(self, owner: str) -> list[str]:
        """The files still holding the owner's id; [] after a complete erase_owner."""
        ...
