"""What every training script reads from SageMaker's script-mode environment (and the local Trainer sets):
SM_MODEL_DIR, SM_CHANNEL_<NAME>, SM_OUTPUT_DATA_DIR, hyperparameters as `--name value` arguments."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

MODEL_DIR = "/opt/ml/model"
OUTPUT_DATA_DIR = "/opt/ml/output/data"
CHANNEL_ROOT = "/opt/ml/input/data"


def channel(name: str) -> Path:
    return Path(os.environ.get(f"SM_CHANNEL_{name.upper()}", f"{CHANNEL_ROOT}/{name}"))


def model_dir() -> Path:
    return Path(os.environ.get("SM_MODEL_DIR", MODEL_DIR))


def output_data_dir() -> Path:
    return Path(os.environ.get("SM_OUTPUT_DATA_DIR", OUTPUT_DATA_DIR))


def processing_path(name: str, default: str) -> Path:
    """A Processing script's input folder: SM_CHANNEL_<NAME> when the local Trainer runs it with channels, else
    SageMaker Processing's path (an explicit --argument wins over both)."""
    return Path(os.environ.get(f"SM_CHANNEL_{name.upper()}", default))


def processing_output(default: str) -> Path:
    """A Processing script's output folder: SM_OUTPUT_DATA_DIR under the local Trainer, else the Processing path."""
    return Path(os.environ.get("SM_OUTPUT_DATA_DIR", default))


def hyperparameter(parser: argparse.ArgumentParser, name: str, kind, default=None) -> None:
    """--min-examples and --min_examples alike (SageMaker passes the names as they were given)."""
    dest = name.replace("-", "_")
    parser.add_argument(f"--{name}", f"--{dest}", dest=dest, type=kind, default=default)


def write_summary(name: str, body: dict) -> None:
    folder = output_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(body, indent=2, sort_keys=True), encoding="utf-8")


def print_owner_counts(summary: dict) -> None:
    """The job's log line: how many owners were trained and skipped and why, never who. SageMaker sends stdout to
    CloudWatch Logs, which account erasure does not rewrite; who is in the summary file (the job's output.tar.gz,
    under the run's prefix, which erasure does rewrite)."""
    skipped = summary.get("skipped") or {}
    reasons: dict[str, int] = {}
    for reason in skipped.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    print(json.dumps({"owners": len(summary.get("owners") or ()), "skipped": len(skipped), "skip_reasons": reasons},
                     sort_keys=True))
