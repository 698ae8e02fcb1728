"""The HTTP API (API Gateway HTTP API v2 events; the local gateway sends the very same events)."""


import functools
import threading
from datetime import datetime, timedelta, timezone
from typing import Annotated

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from photo_organizer.bootstrap import services
from photo_organizer.handlers.logs import route_package_logs
from photo_organizer.errors import (
    AccountErasingError,
    ConfigurationError,
    FeedbackConflictError,
    NotFoundError,
    PermanentError,
    RetryableError,
    UnauthorizedError,
    ValidationError,
)
from photo_organizer.feedback.models import (
    IDEMPOTENCY_KEY_PATTERN,
    FaceFeedback,
    FeedbackOrigin,
    FeedbackRequest,
    FeedbackType,
)
from photo_organizer.models import ErrorBody, PhotoDetail, PhotoMonths, PhotoPage, UploadRequest, UploadTicket
from photo_organizer.search.models import SortOrder
from photo_organizer.services.analysis_progress import AnalysisProgress
from photo_organizer.services.feedback import FeedbackService, FeedbackView
from photo_organizer.services.people import ConsentView, PersonView
from photo_organizer.services.review import MAX_LIMIT as REVIEW_MAX_LIMIT
from photo_organizer.services.review import ReviewKind, ReviewPage
from photo_organizer.services.search import FacetView, SearchFilters, SearchResponse

logger, tracer = Logger(service="photo-organizer"), Tracer(service="photo-organizer")
route_package_logs(logger)
app = APIGatewayHttpResolver(enable_validation=True)
app.configure_openapi(
    title="Photo Organizer API",
    version="1.0.0",
    description="Upload, list, view and delete your photos. Every call acts on the caller's own library.",
    security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
    security=[{"bearer": []}],
)

PUBLIC_PATHS = frozenset({"/openapi.json"})


class SearchUnavailableError(ConfigurationError):
    """The deployment has no search index configured."""


class FeedbackUnavailableError(ConfigurationError):
    """The deployment has no feedback store configured."""


class GatewayRefusal(BaseModel):
    """What the gateway itself answers before the handler runs (API Gateway's shape): 401, 413."""

    message: str


class InvalidField(BaseModel):
    loc: list[str | int]
    type: str


class RequestInvalid(BaseModel):
    """The 422 body (`_request_invalid`): where and which kind of error, never pydantic's message or the input."""

    statusCode: int  # noqa: N815 - the key Powertools' own 422 body uses
    detail: list[InvalidField]


_ANSWER_DESCRIPTIONS = {
    400: ("Refused: the request cannot be done (code and message say why)", ErrorBody),
    401: ("No valid bearer token", GatewayRefusal),
    404: ("Not found (someone else's looks the same)", ErrorBody),
    409: ("Conflicts with the state of the library (a correction already undone, an account being erased)", ErrorBody),
    413: ("The body is too large", GatewayRefusal),
    422: ("A parameter or the body does not match this document", RequestInvalid),
    503: ("A dependency is unavailable or not configured; try again (Retry-After)", ErrorBody),
}


def answers(*errors: int, ok: int = 200, description: str = "Successful Response", empty: bool = False,
            body: bool = False) -> dict[int, dict]:
    """Every status a route answers, for the published document (Schemathesis holds the API to it): the success,
    what any route may answer (400, 401, 422, 503; 413 with a body) and the route's own `errors`."""
    success: dict = {"description": description} | ({"content": {}} if empty else {})
    codes = sorted({400, 401, 422, 503, *errors, *((413,) if body else ())})
    documented = {ok: success}
    for code in codes:
        text, model = _ANSWER_DESCRIPTIONS[code]
        documented[code] = {"description": text, "content": {content_types.APPLICATION_JSON: {"model": model}}}
    return documented


def current_owner() -> str:
    """The owner is the verified token's `sub`, never a parameter the client chooses."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    owner = claims.get("sub")
    if not owner:
        raise UnauthorizedError("no verified subject in the request")
    return str(owner)


def in_range(value: datetime | None, name: str) -> datetime | None:
    """A date parameter with room for the arithmetic done on it: near year 1 or 9999 an offset or a day's step leaves
    datetime's range (OverflowError, once a 500 on GET /photos?before=9999-12-31T23:59:59-14:00)."""
    if value is None:
        return None
    try:
        instant = value.astimezone(timezone.utc) if value.tzinfo else value
        instant - timedelta(days=2), instant + timedelta(days=2)
    except OverflowError:
        raise ValidationError(f"'{name}' is outside the dates this library can hold") from None
    return value


@app.post("/uploads", summary="Start an upload", responses=answers(409, ok=201, description="Upload URL issued", body=True))
@tracer.capture_method
def create_upload(request: Annotated[UploadRequest, Body()]) -> Response[UploadTicket]:
    ticket = services().uploads.start(current_owner(), request)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=ticket)


@app.get("/photos", summary="List your photos, newest first", responses=answers())
@tracer.capture_method
def list_photos(
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    before: Annotated[
        datetime | None,
        Query(description="Start at the photos taken (else uploaded) at or before this ISO date or time (UTC "
              "unless it says otherwise; a date alone means its midnight)"),
    ] = None,
) -> PhotoPage:
    return services().photos.list(current_owner(), limit=limit, cursor=cursor, before=in_range(before, "before"))


@app.get("/photos/months", summary="How many photos each month of your timeline holds, newest first", responses=answers())
@tracer.capture_method
def photo_months() -> PhotoMonths:
    return services().photos.months(current_owner())


@app.get("/photos/<photo_id>", summary="One photo with short-lived links to its thumbnail, preview and original",
         responses=answers(404))
@tracer.capture_method
def get_photo(photo_id: str) -> PhotoDetail:
    return services().photos.get(current_owner(), photo_id)


@app.delete("/photos/<photo_id>", summary="Delete a photo: original, derivatives and records",
            responses=answers(404, ok=204, description="Deleted", empty=True))
@tracer.capture_method
def delete_photo(photo_id: str) -> Response[None]:
    services().photos.delete(current_owner(), photo_id)
    return Response(status_code=204)


class ErasureView(BaseModel):
    """What DELETE /account deleted (a repeated call reports zeros) and what the audit still finds (empty)."""

    deleted: dict[str, int]
    remaining: dict[str, int]


def current_login() -> str | None:
    """The verified token's own sign-in name (Cognito: `cognito:username` in ID tokens, `username` in access
    tokens); account erasure deletes exactly that user, never one the client names."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    login = claims.get("cognito:username") or claims.get("username")
    return str(login) if login else None


@app.delete("/account", summary="Erase the account's library: every photo, face, person, correction and event",
            responses=answers(409) | {202: {"description": "Erased except what is listed in `remaining`; call again"}})
@tracer.capture_method
def erase_account() -> Response[ErasureView]:
    """200 when nothing remains; 202 when only what follows by itself remains (the cloud's search documents,
    removed by the stream indexer) or something else does (listed: the mark stays, calling again finishes)."""
    report = services().account.erase(current_owner(), login=current_login())
    view = ErasureView(deleted=report.counts(), remaining={r.store: r.count for r in report.remaining})
    return Response(status_code=202 if report.remaining else 200, content_type=content_types.APPLICATION_JSON,
                    body=view)


class PersonChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, max_length=100)
    clear_name: bool = False
    hidden: bool | None = None


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    source_person_id: str = Field(min_length=1, max_length=128)


class FacePersonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    person_id: str = Field(min_length=1, max_length=128)


class ConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    biometric_consent: bool


def _person_view(owner: str, person_id: str) -> PersonView:
    views = services().people.list(owner, include_hidden=True)
    return next(v for v in views if v.person_id == person_id)


@app.get("/people", summary="The people in your photos (faces grouped by similarity)", responses=answers())
@tracer.capture_method
def list_people(include_hidden: Annotated[bool, Query()] = False) -> list[PersonView]:
    return services().people.list(current_owner(), include_hidden=include_hidden)


@app.get("/people/<person_id>/photos", summary="Photos in which a person appears, newest first", responses=answers(404))
@tracer.capture_method
def person_photos(person_id: str) -> PhotoPage:
    owner = current_owner()
    return services().photos.summaries(owner, services().people.photo_ids(owner, person_id))


@app.patch("/people/<person_id>", summary="Name, rename or hide a person", responses=answers(404, body=True))
@tracer.capture_method
def change_person(person_id: str, change: Annotated[PersonChange, Body()]) -> PersonView:
    owner = current_owner()
    services().people.update(owner, person_id, name=change.name, hidden=change.hidden, clear_name=change.clear_name)
    return _person_view(owner, person_id)


@app.post("/people/<person_id>/merge", summary="Merge another person into this one; the merge holds from now on",
          responses=answers(404, body=True))
@tracer.capture_method
def merge_people(person_id: str, request: Annotated[MergeRequest, Body()]) -> PersonView:
    owner = current_owner()
    services().people.merge(owner, person_id, request.source_person_id)
    return _person_view(owner, person_id)


# A client's name for one correction, the same on each retry of it: the retry returns the first attempt's event and
# completes what that attempt left undone, never recording the correction twice (FeedbackService.submit).
IdempotencyKey = Annotated[str | None, Header(
    alias="idempotency-key", pattern=IDEMPOTENCY_KEY_PATTERN,
    description="Optional: a fresh random value per correction (e.g. a UUID), sent again unchanged on its retries.",
)]


def _face_event(owner: str, kind: FeedbackType, face_id: str, person_id: str, idempotency_key: str | None) -> None:
    """The people corrections are feedback events too (origin "people"): applied and recorded in one call."""
    try:
        event = FaceFeedback(type=kind, face_id=face_id, person_id=person_id, origin=FeedbackOrigin.PEOPLE)
    except PydanticValidationError as exc:  # an id no face or person of ours could have
        raise NotFoundError(face_id) from exc
    _feedback().submit(owner, event, idempotency_key=idempotency_key)


@app.post("/faces/<face_id>/move", summary="Move a face to another person", responses=answers(404, 409, body=True))
@tracer.capture_method
def move_face(face_id: str, request: Annotated[FacePersonRequest, Body()],
              idempotency_key: IdempotencyKey = None) -> PersonView:
    owner = current_owner()
    _face_event(owner, FeedbackType.FACE_ASSIGNED, face_id, request.person_id, idempotency_key)
    return _person_view(owner, request.person_id)


@app.post("/faces/<face_id>/not-person", summary="This face is not that person; it never goes back there",
          responses=answers(404, 409, ok=204, description="Recorded", empty=True, body=True))
@tracer.capture_method
def not_person(face_id: str, request: Annotated[FacePersonRequest, Body()],
               idempotency_key: IdempotencyKey = None) -> Response[None]:
    _face_event(current_owner(), FeedbackType.FACE_REJECTED, face_id, request.person_id, idempotency_key)
    return Response(status_code=204)


# ---- feedback ------------------------------------------------------------------------------------------------------


def _feedback() -> FeedbackService:
    feedback = services().feedback
    if feedback is None:
        raise FeedbackUnavailableError("feedback is not configured for this deployment")
    return feedback


@app.post(
    "/feedback",
    summary="Correct a tag, caption, face or search result; the library changes at once",
    responses=answers(404, 409, ok=201, description="Applied and recorded", body=True),
)
@tracer.capture_method
def submit_feedback(request: Annotated[FeedbackRequest, Body()],
                    idempotency_key: IdempotencyKey = None) -> Response[FeedbackView]:
    record = _feedback().submit(current_owner(), request, idempotency_key=idempotency_key)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=FeedbackView.of(record))


@app.get("/feedback", summary="Your corrections of one photo, oldest first (undone ones included)",
         responses=answers(404))
@tracer.capture_method
def list_feedback(photo_id: Annotated[str, Query(min_length=1, max_length=128)]) -> list[FeedbackView]:
    return [FeedbackView.of(r) for r in _feedback().list_for_photo(current_owner(), photo_id)]


@app.delete("/feedback/<feedback_id>", summary="Undo a correction: its effect is reversed at once",
            responses=answers(404, 409))
@tracer.capture_method
def undo_feedback(feedback_id: str) -> FeedbackView:
    return FeedbackView.of(_feedback().undo(current_owner(), feedback_id))


@app.get("/settings/biometrics", summary="Whether faces in your photos are grouped into people", responses=answers())
@tracer.capture_method
def get_consent() -> ConsentView:
    return services().people.consent(current_owner())


@app.put("/settings/biometrics", summary="Opt in to, or out of, face grouping; opting out deletes all face data",
         responses=answers(body=True))
@tracer.capture_method
def set_consent(request: Annotated[ConsentRequest, Body()]) -> ConsentView:
    return services().people.set_consent(current_owner(), request.biometric_consent)


@app.get("/review", summary="The questions whose answers teach the models most, least certain first", responses=answers())
@tracer.capture_method
def review_queue(
    limit: Annotated[int, Query(ge=1, le=REVIEW_MAX_LIMIT)] = 20,
    kind: Annotated[list[ReviewKind] | None, Query(description="tag, face, or both (the default).")] = None,
    include_sensitive: Annotated[bool, Query()] = False,
) -> ReviewPage:
    # Each item's `answers.yes` / `answers.no` is a ready POST /feedback body: answering is ordinary feedback.
    return services().review.queue(
        current_owner(), limit=limit, kinds=kind or list(ReviewKind), include_sensitive=include_sensitive
    )


@app.get("/analysis/progress", summary="How many of your photos wait for analysis, are being analysed, are done, or failed",
         responses=answers())
@tracer.capture_method
def analysis_progress() -> AnalysisProgress:
    return services().analysis_progress.of(current_owner())


def _search():
    search = services().search
    if search is None:
        raise SearchUnavailableError("search is not configured for this deployment")
    return search


@app.get("/search", summary="Search your photos by words, people, places, dates, or meaning", responses=answers())
@tracer.capture_method
def search_photos(
    q: Annotated[str, Query(max_length=500, description="Plain words; no query syntax is interpreted.")] = "",
    person: Annotated[list[str] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    place: Annotated[str | None, Query(max_length=200)] = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    near: Annotated[str | None, Query(max_length=100, description="lat,lon,km")] = None,
    camera: Annotated[str | None, Query(max_length=200)] = None,
    include_hidden: Annotated[bool, Query()] = False,
    include_sensitive: Annotated[bool, Query()] = False,
    sort: Annotated[SortOrder, Query()] = SortOrder.RELEVANCE,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> SearchResponse:
    filters = SearchFilters(
        person=person or [], tag=tag or [], place=place, start=in_range(start, "from"), end=in_range(end, "to"),
        near=near, camera=camera,
        include_hidden=include_hidden, include_sensitive=include_sensitive, sort=sort,
    )
    return _search().search(current_owner(), q, filters, limit=limit, cursor=cursor)


@app.get("/search/suggest", summary="Tags, people and places of yours that start with a prefix", responses=answers())
@tracer.capture_method
def suggest(prefix: Annotated[str, Query(min_length=1, max_length=100)]) -> dict[str, list[FacetView]]:
    return _search().suggest(current_owner(), prefix)


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@functools.cache
def openapi_json() -> str:
    """Built once per process: the routes do not change at run time, and generating it costs ~14 ms."""
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


_DISCRIMINATOR_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


@app.exception_handler(RequestValidationError)
def _request_invalid(exc: RequestValidationError) -> Response:
    """Powertools' own 422 shape ({"statusCode", "detail": [{"loc", "type"}]}, no messages), except that an
    unknown or missing event `type` names the field: pydantic puts a discriminator error on the union itself."""
    errors = []
    for error in exc.errors():
        loc = list(error["loc"])
        if error["type"] in _DISCRIMINATOR_ERRORS and (not loc or loc[-1] != "type"):
            loc.append("type")
        errors.append({"loc": loc, "type": error["type"]})
    return Response(
        status_code=422,
        content_type=content_types.APPLICATION_JSON,
        body={"statusCode": 422, "detail": errors},
    )


@app.exception_handler(UnicodeDecodeError)
def _body_not_utf8(exc: UnicodeDecodeError) -> Response:
    """A JSON body that is not UTF-8 (API Gateway passes it base64-encoded): Powertools turns only JSONDecodeError into
    a 422 and let this one through as a 500. Nothing else in a request decodes bytes without translating the error."""
    return Response(
        status_code=422,
        content_type=content_types.APPLICATION_JSON,
        body={"statusCode": 422, "detail": [{"loc": ["body"], "type": "json_invalid"}]},
    )


@app.exception_handler(RecursionError)
def _body_too_deep(exc: RecursionError) -> Response:
    # json.loads recurses once per nesting level: a 200 kB body of brackets exhausted the stack (a 500).
    logger.warning("request nests too deeply", extra={"error": repr(exc)[:200]})
    return _error(400, "invalid_body", "The request body nests too deeply.")


@app.exception_handler(NotFoundError)
def _not_found(exc: NotFoundError) -> Response:
    # Missing and someone else's look the same.
    return _error(404, "not_found", "Not found.")


@app.not_found
def _no_such_route(exc: Exception) -> Response:
    # A path no route matches (an id with characters no id has, like a control character) answers in the documented
    # error shape, not Powertools' own {"statusCode", "message"}; its own code tells a missing route from a missing
    # photo (the deploy rehearsal's route parity looks for it), and neither depends on anyone's data.
    return _error(404, "no_route", "Not found.")


@app.exception_handler(UnauthorizedError)
def _unauthorized(exc: UnauthorizedError) -> Response:
    # Why a credential failed is for the log, not for whoever presented it.
    logger.info("request unauthorized", extra={"error": repr(exc)})
    return _error(401, "unauthorized", "Unauthorized.")


@app.exception_handler(ValidationError)
def _invalid(exc: ValidationError) -> Response:
    code = getattr(exc, "code", "invalid_request")
    return _error(413 if code == "file_too_large" else 400, code, str(exc))


@app.exception_handler(AccountErasingError)
def _account_erasing(exc: AccountErasingError) -> Response:
    return _error(409, "account_erasing", "This account is being erased; try again when the erasure finished.")


@app.exception_handler(FeedbackConflictError)
def _feedback_conflict(exc: FeedbackConflictError) -> Response:
    return _error(409, exc.code, str(exc))


@app.exception_handler(FeedbackUnavailableError)
def _feedback_unavailable(exc: FeedbackUnavailableError) -> Response:
    logger.warning("feedback unavailable", extra={"error": repr(exc)})
    return _error(503, "feedback_unavailable", "Feedback is not available in this deployment.")


@app.exception_handler(SearchUnavailableError)
def _search_unavailable(exc: SearchUnavailableError) -> Response:
    logger.warning("search unavailable", extra={"error": repr(exc)})
    return _error(503, "search_unavailable", "Search is not available in this deployment.")


@app.exception_handler(ConfigurationError)
def _misconfigured(exc: ConfigurationError) -> Response:
    # The deployment, not the request, is at fault (a key the role may not use, a missing table): a 400 would send
    # the client to change a request that was fine. Logged as an error for the operators; the answer says nothing.
    logger.error("deployment refused the request", extra={"error": repr(exc)})
    return _error(500, "misconfigured", "The service cannot do this right now; its operators have been told.")


@app.exception_handler(PermanentError)
def _permanent(exc: PermanentError) -> Response:
    # Conflicts, configuration and adapter failures name tables, keys, buckets and owners: logged, never answered.
    logger.warning("request refused", extra={"error": repr(exc)})
    return _error(400, "bad_request", "The request cannot be done.")


@app.exception_handler(RetryableError)
def _retryable(exc: RetryableError) -> Response:
    logger.warning("dependency unavailable", extra={"error": repr(exc)})
    return Response(
        status_code=503,
        content_type=content_types.APPLICATION_JSON,
        body=ErrorBody(code="unavailable", message="Try again shortly.").model_dump_json(),
        headers={"Retry-After": "2"},
    )


# Powertools keeps the request being resolved on the resolver's class (BaseRouter.current_event) and the logger's
# keys process-wide. Lambda never runs two requests in one process, but the local gateway answers on threads, where
# two requests at once would read each other's event — and caller. One request at a time per process.
_one_request_at_a_time = threading.Lock()


def handler(event: dict, context: LambdaContext) -> dict:
    with _one_request_at_a_time:
        return _resolve(event, context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def _resolve(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
