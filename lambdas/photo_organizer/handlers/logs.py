"""Services and the domain log with the standard library: they also run on Glue, which has no Powertools."""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger

PACKAGE_LOGGER = "photo_organizer"


def route_package_logs(logger: Logger) -> None:
    """In a Lambda, the package's records go out through the handler's Powertools logger (JSON, with the
    invocation's keys and each record's `extra`), as when the services logged with Powertools child loggers.
    Elsewhere (tests, the local stack) the standard library's configuration is left alone."""
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    logging.getLogger(PACKAGE_LOGGER)  # registered, so that Powertools finds it
    copy_config_to_registered_loggers(source_logger=logger, include={PACKAGE_LOGGER})
