"""PipelineRuns on SageMaker Pipelines: ListPipelineExecutions and StartPipelineExecution of one pipeline.

Only boto3 (no sagemaker SDK in any Lambda). The newest executions come first; a run that is still Executing or
Stopping blocks a new start, and the trigger starts runs one at a time, so the first page (newest 10) holds any
run that is still going.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.errors import error_code, translate
from photo_organizer.errors import StorageUnavailableError

GOING = ("Executing", "Stopping")
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})


class SageMakerPipelineRuns:
    def __init__(self, pipeline_name: str, *, region: str | None = None,
                 client_factory: Callable[[], Any] | None = None) -> None:
        self._name = pipeline_name
        self._client = LazyClient(client_factory or (lambda: boto3.client("sagemaker", region_name=region or None,
                                                                          config=CLIENT_CONFIG)))

    def running(self) -> list[str]:
        response = self._call("list_pipeline_executions", PipelineName=self._name, SortBy="CreationTime",
                              SortOrder="Descending", MaxResults=10)
        return [e["PipelineExecutionArn"] for e in response.get("PipelineExecutionSummaries", [])
                if e.get("PipelineExecutionStatus") in GOING]

    def start(self, *, token: str, display_name: str) -> str:
        response = self._call("start_pipeline_execution", PipelineName=self._name,
                              PipelineExecutionDisplayName=display_name[:82], ClientRequestToken=token[:128])
        return response["PipelineExecutionArn"]

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        what = f"{operation} of the retraining pipeline"
        try:
            return getattr(self._client(), operation)(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "ResourceLimitExceeded":  # SageMaker's own concurrency limit: later
                raise StorageUnavailableError(f"{what}: resource limit reached, try again later") from exc
            raise translate(exc, what=what) from exc
        except BotoCoreError as exc:
            raise translate(exc, what=what) from exc
