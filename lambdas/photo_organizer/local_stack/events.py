"""Builders for the exact event shapes AWS delivers, so local runs and tests drive the real handlers."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode

LOCAL_ACCOUNT = "000000000000"
LOCAL_REGION = "local-1"


def object_created_event(
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str,
    sequencer: str,
    version: str | None = None,
    reason: str = "PostObject",
) -> dict:
    """An S3 'Object Created' notification as EventBridge delivers it (detail-type and detail layout)."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj = {"key": key, "size": size, "etag": etag, "sequencer": sequencer}
    if version is not None:
        obj["version-id"] = version
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": LOCAL_ACCOUNT,
        "time": now,
        "region": LOCAL_REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": LOCAL_ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


def sqs_record(body: str, *, queue: str = "upload-events", receive_count: int = 1) -> dict:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(int(datetime.now(timezone.utc).timestamp() * 1000)),
            "SenderId": LOCAL_ACCOUNT,
            "ApproximateFirstReceiveTimestamp": str(int(datetime.now(timezone.utc).timestamp() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{queue}",
        "awsRegion": LOCAL_REGION,
    }


def sqs_event(records: list[dict]) -> dict:
    return {"Records": records}


def http_api_event(
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    claims: dict | None = None,
    source_ip: str = "127.0.0.1",
) -> dict:
    """An API Gateway HTTP API (payload format 2.0) event, with JWT authorizer claims when given."""
    import base64

    headers = {k.lower(): v for k, v in (headers or {}).items()}
    query = query or []
    query_parameters: dict[str, str] = {}
    for name, value in query:
        # HTTP API joins repeated parameters with commas.
        query_parameters[name] = f"{query_parameters[name]},{value}" if name in query_parameters else value
    now = datetime.now(timezone.utc)
    text_body: str | None
    try:
        text_body, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    request_context: dict = {
        "accountId": LOCAL_ACCOUNT,
        "apiId": "local",
        "domainName": headers.get("host", "localhost"),
        "domainPrefix": "local",
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": uuid.uuid4().hex,
        "routeKey": "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if claims is not None:
        request_context["authorizer"] = {
            "jwt": {"claims": {k: _claim_text(v) for k, v in claims.items()}, "scopes": None}
        }
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query),
        "headers": headers,
        "requestContext": request_context,
        "isBase64Encoded": is_base64,
    }
    if query_parameters:
        event["queryStringParameters"] = query_parameters
    if body:
        event["body"] = text_body
    return event


def _claim_text(value: object) -> str:
    # API Gateway hands JWT claims to the integration as strings (arrays become "[a b]").
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class LambdaContextStub:
    """What Powertools reads from a Lambda context object."""

    function_name: str = "photo-organizer-local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:photo-organizer-local"
    aws_request_id: str = ""

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
