"""Every photo of the table as search documents: the source of a full reindex and of drift repair."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.errors import translate
from photo_organizer.adapters.aws.stream_documents import deserialize_image, document_from_item
from photo_organizer.search.models import SearchDocument


def documents_in_table(
    table_name: str, *, client_factory: Callable[[], Any] | None = None, page_size: int = 500
) -> Iterator[SearchDocument]:
    """Scans only photo items (entity = photo) and converts them exactly as the stream indexer does, so a
    reindex and the stream can never disagree about what a photo's document is."""
    client = (client_factory or (lambda: boto3.client("dynamodb")))()
    pages = client.get_paginator("scan").paginate(
        TableName=table_name,
        FilterExpression="#entity = :photo",
        ExpressionAttributeNames={"#entity": "entity"},
        ExpressionAttributeValues={":photo": {"S": "photo"}},
        PaginationConfig={"PageSize": page_size},
    )
    try:
        for page in pages:
            for item in page.get("Items", []):
                document = document_from_item(deserialize_image(item))
                if document is not None:
                    yield document
    except (ClientError, BotoCoreError) as exc:
        # A throttled page past the SDK's retries: the reindex or reconcile stops with a retryable error (run it
        # again: versioned writes make a repeat harmless), never with a bare botocore error.
        raise translate(exc, what=f"scanning {table_name} for search documents") from exc
