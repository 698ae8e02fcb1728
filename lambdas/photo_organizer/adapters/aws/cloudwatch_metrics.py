"""CloudWatch custom metrics: the Glue jobs' run summaries as PutMetricData calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from photo_organizer.adapters.aws.clients import LazyClient, client_factory

# PutMetricData takes at most 1000 metrics per call (botocore's cloudwatch model, MetricData documentation).
METRICS_PER_CALL = 1000


class CloudWatchMetrics:
    def __init__(self, *, region: str | None = None, client_factory_: Callable[[], Any] | None = None) -> None:
        self._client = LazyClient(client_factory_ or client_factory("cloudwatch", region=region))

    def put(self, namespace: str, data: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(data), METRICS_PER_CALL):
            self._client().put_metric_data(Namespace=namespace, MetricData=list(data[start : start + METRICS_PER_CALL]))
