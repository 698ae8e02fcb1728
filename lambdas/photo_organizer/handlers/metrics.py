"""The functions' one Powertools Metrics object and the only way they add to it.

Powertools keeps the metrics it may not publish: with POWERTOOLS_METRICS_DISABLED (local runs), `log_metrics` never
clears them, and once 100 values pile up it prints them anyway (every 100 ingests, a JSON blob on the console). So a
disabled run adds nothing.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

metrics = Metrics(namespace="PhotoOrganizer", service="photo-organizer")


def count(name: str, value: float = 1) -> None:
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
