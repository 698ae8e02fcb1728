"""The local gateway: one ASGI app on loopback that plays API Gateway (JWT authorizer + HTTP API v2 events),
S3 (presigned POST uploads with the policy enforced, signed GETs) and Cognito's JWKS/login for local users."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photo_organizer.errors import BlobNotFoundError, PermanentError, RetryableError, UnauthorizedError, UploadPolicyError
from photo_organizer.disposition import content_disposition
from photo_organizer.local_stack.events import LambdaContextStub, http_api_event, object_created_event
from photo_organizer.local_stack.identity import TOKEN_TTL_SECONDS, LocalUser
from photo_organizer.local_stack.throttle import LoginThrottle

if TYPE_CHECKING:
    from photo_organizer.local_stack.stack import LocalStack

API_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
PUBLIC_API_PATHS = frozenset({"/openapi.json"})
MAX_API_BODY = 1024 * 1024
MAX_LOGIN_BODY = 8 * 1024
# Room for the form fields around the file part of a presigned POST.
MULTIPART_OVERHEAD = 64 * 1024
# Presigned POSTs storing their bytes at once (threads); the others wait on the event loop, holding no thread.
UPLOAD_WRITERS = 4
# API requests answered on the event loop itself when no other API request is being resolved. A presign is one
# SQLite insert and an HMAC (~1.5 ms of CPU); the two thread hops around it cost far more on a busy machine, each
# waiting for a thread, then the loop, to be scheduled: ~85% of a presign's time in the server under
# benchmarks/load.py uploads (p50 40 -> 3.5 ms, p95 150-300 -> 10-20 ms answered here). Slower routes (search,
# listings) stay on threads, so that the loop keeps reading uploads and serving thumbnails meanwhile.
ANSWERED_ON_THE_LOOP = frozenset({("POST", "/uploads")})
# On every response, pages and blobs alike. The app (build/web) loads its scripts and styles as files, never inline.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self';"
        " object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

logger = logging.getLogger(__name__)


class BodyTooLargeError(Exception):
    """The request body passed its running limit while it was being read."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk and given up as soon as it passes `limit` (whatever Content-Length said)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def limited_request(request: Request, limit: int) -> Request:
    """The same request whose body stream raises BodyTooLargeError once more than `limit` bytes have arrived, so a
    form parser reading it never holds (or spools) more than that."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLargeError
        return message

    return Request(request.scope, receive)


class SecurityHeaders:
    """ASGI middleware: refuses a Host it does not serve (DNS rebinding) and adds SECURITY_HEADERS to every answer."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
        if host not in self.allowed_hosts:
            response = JSONResponse({"message": "Misdirected Request"}, status_code=421, headers=SECURITY_HEADERS)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode("latin-1").lower() not in SECURITY_HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def allowed_hosts(port: int, public_base_url: str) -> frozenset[str]:
    """The Host values the gateway answers: its loopback names on its port, and the public base URL's host."""
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    public = urlsplit(public_base_url)
    if public.hostname:
        default_port = 443 if public.scheme == "https" else 80
        public_port = public.port or default_port
        name = f"[{public.hostname}]" if ":" in public.hostname else public.hostname
        hosts.add(f"{name}:{public_port}")
        if public_port == default_port:
            hosts.add(name)
    return frozenset(hosts)


def create_gateway(stack: LocalStack) -> ASGIApp:
    async def jwks(request: Request) -> Response:
        return JSONResponse(stack.identity.jwks())

    throttle = LoginThrottle()
    upload_writers = anyio.CapacityLimiter(UPLOAD_WRITERS)

    def token_response(user: LocalUser) -> Response:
        token = stack.identity.issue_token(user)
        return JSONResponse({"id_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECONDS})

    async def login_body(request: Request) -> dict | Response:
        try:
            body = json.loads(await read_limited(request, MAX_LOGIN_BODY) or b"{}")
        except BodyTooLargeError:
            return JSONResponse({"message": "Request Entity Too Large"}, status_code=413)
        except (ValueError, RecursionError):  # RecursionError: 4,000 nested brackets fit in 8 KiB
            body = None
        return body if isinstance(body, dict) else JSONResponse({"message": "a JSON object is required"}, status_code=400)

    async def sign_in_link(request: Request) -> Response:
        """Names the account a sign-in link would open, without using it up: the app asks before it signs in."""
        body = await login_body(request)
        if isinstance(body, Response):
            return body
        try:
            user = await run_in_threadpool(stack.identity.sign_in_code_user, str(body.get("code", "")))
        except UnauthorizedError:
            return JSONResponse({"message": "This sign-in link is unknown, used or expired."}, status_code=401)
        return JSONResponse({"username": user.username})

    async def login(request: Request) -> Response:
        body = await login_body(request)
        if isinstance(body, Response):
            return body
        if "code" in body:  # a sign-in link, confirmed by its person in the app: works once
            try:
                user = await run_in_threadpool(stack.identity.redeem_sign_in_code, str(body["code"]))
            except UnauthorizedError:
                return JSONResponse({"message": "This sign-in link is unknown, used or expired."}, status_code=401)
            return token_response(user)
        try:
            username, password = str(body["username"]), str(body["password"])
        except KeyError:
            return JSONResponse({"message": "username and password are required"}, status_code=400)
        client = request.client.host if request.client else "unknown"
        # Checked before any password hashing: a throttled attempt costs the server nothing.
        wait = throttle.retry_after(username, client)
        if wait:
            return JSONResponse(
                {"message": "Too many failed attempts; try again later."},
                status_code=429,
                headers={"retry-after": str(wait)},
            )
        try:
            user = await run_in_threadpool(stack.identity.authenticate, username, password)
        except UnauthorizedError:
            throttle.failed(username, client)
            return JSONResponse({"message": "Incorrect username or password."}, status_code=401)
        throttle.succeeded(username, client)
        return token_response(user)

    async def upload(request: Request) -> Response:
        area = request.path_params["area"]
        if area != "originals":
            return _s3_error(405, "MethodNotAllowed", "Uploads go to the originals area only.")
        limit = stack.settings.max_upload_bytes + MULTIPART_OVERHEAD
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit():
            # Like S3: a POST upload must say its length (a chunked one would be read before its size is known).
            return _s3_error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        if int(declared) > limit:
            return _s3_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        try:
            async with limited_request(request, limit).form(max_files=1, max_fields=32) as form:
                pairs = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
                fields = dict(pairs)
                if len(fields) != len(pairs):
                    # S3 refuses a form that repeats a field; a dict would silently keep only the last one.
                    return _s3_error(400, "InvalidArgument", "A form field was given more than once.")
                file = form.get("file")
                if file is None or isinstance(file, str):
                    return _s3_error(400, "InvalidArgument", "The form has no file part.")
                data = await file.read()
                content_type = file.content_type
        except BodyTooLargeError:
            return _s3_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        # The rest in one trip off the event loop: the URL's claim and the queue are SQLite writes, the blob a file
        # write, the ETag a hash of the whole body. On the loop, every other request waited for them (the claim
        # alone: ~17 ms wall per upload at load, benchmarks/load.py uploads); one thread hop in all, not one each.
        # At most UPLOAD_WRITERS of them at once: blob writes and queue sends take one lock each anyway, and 40
        # upload threads (the shared pool's size) queued for those locks and the GIL ahead of every API request.
        return await anyio.to_thread.run_sync(store_upload, area, fields, data, content_type, limiter=upload_writers)

    def store_upload(area: str, fields: dict[str, str], data: bytes, content_type: str | None) -> Response:
        try:
            verified = stack.verify_upload(
                fields, file_size=len(data), file_content_type=content_type, area=area, now=datetime.now(timezone.utc)
            )
        except UploadPolicyError as exc:
            status, code = (403, "AccessDenied")
            if exc.code == "size_out_of_range":
                status, code = 400, ("EntityTooSmall" if not data else "EntityTooLarge")
            return _s3_error(status, code, f"{exc.code}: {exc.message}")
        originals = stack.services.originals
        if originals.exists(verified.key):
            # Stricter than S3 on purpose: a second POST with the same policy must not replace validated bytes.
            return _s3_error(403, "AccessDenied", "This upload URL has been used already.")
        try:
            originals.put(verified.key, data, content_type=verified.content_type)
        except RetryableError:
            # Nothing was stored (a full disk): the URL is given back and the client retries it, as S3 asks a
            # client to after a 503 SlowDown. Spent, it would leave the photo pending with no way to upload it.
            stack.verify_upload.release(verified.key)
            return _s3_error(503, "SlowDown", "Please reduce your request rate.")
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        stack.queue.send(
            object_created_event(area, verified.key, size=len(data), etag=etag, sequencer=f"{time.time_ns():020X}")
        )
        return Response(status_code=204, headers={"ETag": f'"{etag}"', "Location": f"/_blobs/{area}/{verified.key}"})

    async def download(request: Request) -> Response:
        area, key = request.path_params["area"], request.path_params["key"]
        store = {"originals": stack.services.originals, "derivatives": stack.services.derivatives}.get(area)
        if store is None:
            return _s3_error(404, "NoSuchBucket", "The specified bucket does not exist.")
        try:
            wanted = store.check_signed_get(key, dict(request.query_params))
            blob = await run_in_threadpool(store.get, wanted.key, version=wanted.version)
        except UnauthorizedError:
            return _s3_error(403, "AccessDenied", "Request has expired or the signature does not match.")
        except (BlobNotFoundError, PermanentError):
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        headers = {"Cache-Control": "private, max-age=300"}
        if wanted.download_name:
            headers["Content-Disposition"] = content_disposition(wanted.download_name)
        return Response(blob.data, media_type=blob.content_type or "application/octet-stream", headers=headers)

    async def api(request: Request) -> Response:
        path = "/" + request.path_params.get("path", "")
        if request.method == "GET" and not request.headers.get("authorization"):
            asset = stack.web.asset(path.lstrip("/"))
            if asset is not None:
                return asset
            if stack.web.wants_page(request, path):
                return stack.web_page()  # SPA routing: the app draws the page for this path
        claims = None
        if path not in PUBLIC_API_PATHS:
            # Authenticated before a byte of the body is read: an anonymous client cannot make the server hold data.
            try:
                claims = stack.identity.verify(_bearer(request))
            except UnauthorizedError:
                # API Gateway's JWT authorizer answers exactly this, without detail.
                return JSONResponse({"message": "Unauthorized"}, status_code=401, headers={"www-authenticate": "Bearer"})
        try:
            body = await read_limited(request, MAX_API_BODY)
        except BodyTooLargeError:
            return JSONResponse({"message": "Request Entity Too Large"}, status_code=413)
        event = http_api_event(
            method=request.method,
            path=path,
            query=list(request.query_params.multi_items()),
            headers=dict(request.headers),
            body=body,
            claims=claims,
            source_ip=request.client.host if request.client else "127.0.0.1",
        )
        result = None
        if (request.method, path) in ANSWERED_ON_THE_LOOP:
            result = stack.api_handler_if_idle(event, LambdaContextStub())
        if result is None:
            result = await run_in_threadpool(stack.api_handler, event, LambdaContextStub())
        return _lambda_response(result)

    async def home(request: Request) -> Response:
        return stack.web_page()

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/auth/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/auth/token", login, methods=["POST"]),
        Route("/auth/sign-in-link", sign_in_link, methods=["POST"]),
        Route("/_blobs/{area}", upload, methods=["POST"]),
        Route("/_blobs/{area}/{key:path}", download, methods=["GET"]),
        Route("/{path:path}", api, methods=API_METHODS),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _no_route})
    return SecurityHeaders(app, allowed_hosts=allowed_hosts(stack.port, stack.settings.public_base_url))


async def _no_route(request: Request, exc: Exception) -> Response:
    """A path no route takes (the catch-all does not take one with a line break in it): the API's own 404 body, not
    Starlette's text/plain one, so every answer of the gateway is the shape the published document declares."""
    return JSONResponse({"code": "no_route", "message": "Not found."}, status_code=404)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("no bearer token")
    return token.strip()


def _lambda_response(result: dict) -> Response:
    import base64

    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    response = Response(payload, status_code=int(result.get("statusCode", 200)), headers=headers)
    for cookie in result.get("cookies") or []:
        response.headers.append("set-cookie", cookie)
    return response


def _s3_error(status: int, code: str, message: str) -> Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Response(xml, status_code=status, media_type="application/xml")
