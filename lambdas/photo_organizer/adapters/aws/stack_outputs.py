"""CloudFormation stack outputs, for operator commands that find a deployment by its stack names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.errors import translate
from photo_organizer.errors import ConfigurationError


class StackOutputs:
    def __init__(self, *, region: str | None = None, client_factory: Callable[[], Any] | None = None) -> None:
        if client_factory is None:
            import boto3

            client_factory = lambda: boto3.client("cloudformation", region_name=region)  # noqa: E731
        self._client = LazyClient(client_factory)

    def of(self, stack_name: str) -> dict[str, str]:
        """OutputKey -> OutputValue of a deployed stack; a missing stack is a ConfigurationError naming it."""
        try:
            stacks = self._client().describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                raise ConfigurationError(f"stack {stack_name} is not deployed in this account and region") from exc
            raise translate(exc, what=f"describing stack {stack_name}") from exc
        except BotoCoreError as exc:
            raise translate(exc, what=f"describing stack {stack_name}") from exc
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
