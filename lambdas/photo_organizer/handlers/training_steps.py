"""The retraining pipeline's Lambda steps (SageMaker invokes them with the step's Arguments as the event and reads
the step's OutputParameters from the returned object):

- export_handler   ExportFeatures: {"execution_id", "model_package_groups": {kind: group}} -> {"photos", "faces"}
- reapply_handler  Reapply<Kind>: {"kind", "model_data", "execution_id"} -> {"updated"}

Two functions (one per handler), not one with a dispatch: each gets a role with only what its step does (the export
reads the registry and writes the run's snapshot; the re-application reads the run and writes suggestions/matchers).
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from photo_organizer import bootstrap
from photo_organizer.errors import ValidationError
from photo_organizer.handlers.logs import route_package_logs
from photo_organizer.services.training_runs import KINDS, ModelReapplication, TrainingRunStaging

logger = Logger(service="photo-organizer")
route_package_logs(logger)
tracer = Tracer(service="photo-organizer")


def _text(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise ValidationError(f"the step's event needs {name}")
    return value


def export(event: dict[str, Any], staging: TrainingRunStaging) -> dict[str, int]:
    groups = event.get("model_package_groups") or {}
    if not isinstance(groups, dict) or not all(isinstance(v, str) for v in groups.values()):
        raise ValidationError("model_package_groups must map kinds to group names")
    counts = staging.stage(_text(event, "execution_id"), groups)
    return {"photos": counts["photos"], "faces": counts["faces"]}


def reapply(event: dict[str, Any], reapplication: ModelReapplication) -> dict[str, int]:
    kind = _text(event, "kind")
    if kind not in KINDS:
        raise ValidationError(f"unknown model kind {kind!r}")
    return {"updated": reapplication.reapply(kind, _text(event, "model_data"), _text(event, "execution_id"))}


@functools.cache
def _staging() -> TrainingRunStaging:
    return bootstrap.training_run_staging()


@functools.cache
def _reapplication() -> ModelReapplication:
    return bootstrap.model_reapplication()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def export_handler(event: dict, context: LambdaContext) -> dict:
    return export(event, _staging())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def reapply_handler(event: dict, context: LambdaContext) -> dict:
    return reapply(event, _reapplication())
