"""Argument parsing shared by the Glue jobs (glue_jobs/*/job.py), which both ship this package."""

from __future__ import annotations

import argparse


def flag(value: str) -> bool:
    """An argparse type for booleans. Glue job arguments are strings: "--embeddings false" must not be truthy."""
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {value!r}")
