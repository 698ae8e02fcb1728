"""The local gateway: one ASGI app on loopback that plays API Gateway (JWT authorizer + HTTP API v2 events),
S3 (presigned POST uploads with the policy enforced, signed GETs) and Cognito's JWKS/login for local users."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from photo_organizer.errors import BlobNotFoundError, PermanentError, UnauthorizedError, UploadPolicyError
from photo_organizer.disposition import content_disposition
from photo_organizer.local_stack.events import LambdaContextStub, http_api_event, object_created_event

if TYPE_CHECKING:
    from photo_organizer.local_stack.stack import LocalStack

API_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
PUBLIC_API_PATHS = frozenset({"/openapi.json"})
MAX_API_BODY = 1024 * 1024
# Room for the form fields around the file part of a presigned POST.
MULTIPART_OVERHEAD = 64 * 1024


def create_gateway(stack: LocalStack) -> Starlette:
    async def jwks(request: Request) -> Response:
        return JSONResponse(stack.identity.jwks())

    async def login(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            user = await run_in_threadpool(stack.identity.authenticate, str(body["username"]), str(body["password"]))
        except (KeyError, ValueError, TypeError):
            return JSONResponse({"message": "username and password are required"}, status_code=400)
        except UnauthorizedError:
            return JSONResponse({"message": "Incorrect username or password."}, status_code=401)
        token = stack.identity.issue_token(user)
        return JSONResponse({"id_token": token, "token_type": "Bearer", "expires_in": 12 * 3600})

    async def upload(request: Request) -> Response:
        area = request.path_params["area"]
        if area != "originals":
            return _s3_error(405, "MethodNotAllowed", "Uploads go to the originals area only.")
        declared_length = int(request.headers.get("content-length") or 0)
        if declared_length > stack.settings.max_upload_bytes + MULTIPART_OVERHEAD:
            return _s3_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        data = b""
        try:
            async with request.form(max_files=1, max_fields=32) as form:
                pairs = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
                fields = dict(pairs)
                if len(fields) != len(pairs):
                    # S3 refuses a form that repeats a field; a dict would silently keep only the last one.
                    return _s3_error(400, "InvalidArgument", "A form field was given more than once.")
                file = form.get("file")
                if file is None or isinstance(file, str):
                    return _s3_error(400, "InvalidArgument", "The form has no file part.")
                data = await file.read()
                verified = stack.verify_upload(
                    fields,
                    file_size=len(data),
                    file_content_type=file.content_type,
                    area=area,
                    now=datetime.now(timezone.utc),
                )
        except UploadPolicyError as exc:
            status, code = (403, "AccessDenied")
            if exc.code == "size_out_of_range":
                status, code = 400, ("EntityTooSmall" if not data else "EntityTooLarge")
            return _s3_error(status, code, f"{exc.code}: {exc}")
        originals = stack.services.originals
        if await run_in_threadpool(originals.exists, verified.key):
            # Stricter than S3 on purpose: a second POST with the same policy must not replace validated bytes.
            return _s3_error(403, "AccessDenied", "This upload URL has been used already.")
        await run_in_threadpool(originals.put, verified.key, data, content_type=verified.content_type)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        stack.queue.send(
            object_created_event(
                area, verified.key, size=len(data), etag=etag, sequencer=f"{time.time_ns():020X}"
            )
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
        body = await request.body()
        if len(body) > MAX_API_BODY:
            return JSONResponse({"message": "Request Entity Too Large"}, status_code=413)
        claims = None
        if path not in PUBLIC_API_PATHS:
            try:
                claims = stack.identity.verify(_bearer(request))
            except UnauthorizedError:
                # API Gateway's JWT authorizer answers exactly this, without detail.
                return JSONResponse({"message": "Unauthorized"}, status_code=401, headers={"www-authenticate": "Bearer"})
        event = http_api_event(
            method=request.method,
            path=path,
            query=list(request.query_params.multi_items()),
            headers=dict(request.headers),
            body=body,
            claims=claims,
            source_ip=request.client.host if request.client else "127.0.0.1",
        )
        result = await run_in_threadpool(stack.api_handler, event, LambdaContextStub())
        return _lambda_response(result)

    async def home(request: Request) -> Response:
        return stack.web_page()

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/auth/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/auth/token", login, methods=["POST"]),
        Route("/_blobs/{area}", upload, methods=["POST"]),
        Route("/_blobs/{area}/{key:path}", download, methods=["GET"]),
        Route("/{path:path}", api, methods=API_METHODS),
    ]
    return Starlette(routes=routes)


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
