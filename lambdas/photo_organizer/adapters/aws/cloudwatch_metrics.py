"""CloudWatch custom metrics: the Glue jobs' run summaries as PutMetricData calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient, client_factory
from photo_organizer.adapters.aws.errors import translate

# PutMetricData takes at most 1000 metrics per call (botocore's cloudwatch model, MetricData documentation).
METRICS_PER_CALL = 1000


class CloudWatchMetrics:
    def __init__(self, *, region: str | None = None, client_factory_: Callable[[], Any] | None = None) -> None:
        self._client = LazyClient(client_factory_ or client_factory("cloudwatch", region=region))

    def put(self, namespace: str, data: Sequence[dict[str, Any]]) -> None:
        """A throttle (past the SDK's retries) is a StorageUnavailableError like every adapter's: the job's
        publishing step fails retryably instead of with a bare botocore error."""
        for start in range(0, len(data), METRICS_PER_CALL):
            try:
                self._client().put_metric_data(Namespace=namespace,
                                               MetricData=list(data[start : start + METRICS_PER_CALL]))
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, what=f"metrics to {namespace}") from exc
