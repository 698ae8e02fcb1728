"""Secrets Manager reads, through Powertools parameters (one cached client and value per container)."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from photo_organizer.adapters.aws.errors import translate
from photo_organizer.errors import ConfigurationError

# The key is read once, when a container builds its services; the cache only spares a second caller the call.
SECRET_MAX_AGE_SECONDS = 3600


def read_secret_string(secret_arn: str) -> str:
    """The secret's string value; a missing, unreadable or empty secret is a ConfigurationError, throttling or
    an outage a StorageUnavailableError (retryable: the next request builds the services again)."""
    try:
        value = parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
    except GetParameterError as exc:
        # Powertools wraps the botocore error without chaining it (`raise ... ` inside `except`): it is the context.
        cause = exc.__cause__ or exc.__context__
        raise translate(cause or exc, what=f"reading secret {secret_arn}") from exc
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"secret {secret_arn} holds no string value")
    return value.strip()
