"""The HTTP API (API Gateway HTTP API v2 events; the local gateway sends the very same events)."""


from typing import Annotated

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.utilities.typing import LambdaContext

from photo_organizer.bootstrap import services
from photo_organizer.errors import (
    NotFoundError,
    PermanentError,
    RetryableError,
    UnauthorizedError,
    ValidationError,
)
from photo_organizer.models import ErrorBody, PhotoDetail, PhotoPage, UploadRequest, UploadTicket

logger, tracer = Logger(service="photo-organizer"), Tracer(service="photo-organizer")
app = APIGatewayHttpResolver(enable_validation=True)
app.configure_openapi(
    title="Photo Organizer API",
    version="1.0.0",
    description="Upload, list, view and delete your photos. Every call acts on the caller's own library.",
    security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
    security=[{"bearer": []}],
)

PUBLIC_PATHS = frozenset({"/openapi.json"})


def current_owner() -> str:
    """The owner is the verified token's `sub`, never a parameter the client chooses."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    owner = claims.get("sub")
    if not owner:
        raise UnauthorizedError("no verified subject in the request")
    return str(owner)


@app.post("/uploads", summary="Start an upload", responses={201: {"description": "Upload URL issued"}})
@tracer.capture_method
def create_upload(request: Annotated[UploadRequest, Body()]) -> Response[UploadTicket]:
    ticket = services().uploads.start(current_owner(), request)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=ticket)


@app.get("/photos", summary="List your photos, newest first")
@tracer.capture_method
def list_photos(
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> PhotoPage:
    return services().photos.list(current_owner(), limit=limit, cursor=cursor)


@app.get("/photos/<photo_id>", summary="One photo with short-lived links to its thumbnail, preview and original")
@tracer.capture_method
def get_photo(photo_id: str) -> PhotoDetail:
    return services().photos.get(current_owner(), photo_id)


@app.delete("/photos/<photo_id>", summary="Delete a photo: original, derivatives and records")
@tracer.capture_method
def delete_photo(photo_id: str) -> Response[None]:
    services().photos.delete(current_owner(), photo_id)
    return Response(status_code=204)


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


def openapi_json() -> str:
    return app.get_openapi_json_schema(
        title="Photo Organizer API",
        version="1.0.0",
        security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
        security=[{"bearer": []}],
    )


def _error(status: int, code: str, message: str) -> Response[ErrorBody]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=ErrorBody(code=code, message=message).model_dump_json(),
    )


@app.exception_handler(NotFoundError)
def _not_found(exc: NotFoundError) -> Response:
    return _error(404, "not_found", "No such photo.")


@app.exception_handler(UnauthorizedError)
def _unauthorized(exc: UnauthorizedError) -> Response:
    return _error(401, "unauthorized", str(exc))


@app.exception_handler(ValidationError)
def _invalid(exc: ValidationError) -> Response:
    code = getattr(exc, "code", "invalid_request")
    return _error(413 if code == "file_too_large" else 400, code, str(exc))


@app.exception_handler(PermanentError)
def _permanent(exc: PermanentError) -> Response:
    logger.warning("request refused", extra={"error": repr(exc)})
    return _error(400, "bad_request", str(exc))


@app.exception_handler(RetryableError)
def _retryable(exc: RetryableError) -> Response:
    logger.warning("dependency unavailable", extra={"error": repr(exc)})
    return Response(
        status_code=503,
        content_type=content_types.APPLICATION_JSON,
        body=ErrorBody(code="unavailable", message="Try again shortly.").model_dump_json(),
        headers={"Retry-After": "2"},
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
