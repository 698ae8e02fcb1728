"""A real HTTP client of the Photo Organizer API: what the CLI, the demo and the e2e tests use to upload.

It calls POST /uploads, then sends the file as a multipart POST to the returned URL with the returned fields
(the file part last, as S3 requires), exactly as a browser or mobile client would against AWS.
"""

from __future__ import annotations

import mimetypes
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

FINAL_STATUSES = frozenset({"READY", "DUPLICATE", "REJECTED"})
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class UploadResult:
    path: Path
    photo_id: str | None
    status: str
    detail: str = ""


class PhotoApiClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {token}"})
        self._plain = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()
        self._plain.close()

    def __enter__(self) -> PhotoApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = self._http.request(method, f"{self.base_url}{path}", **kwargs)
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text)
        return response

    def start_upload(self, filename: str, content_type: str, size: int) -> dict:
        return self._call("POST", "/uploads", json={"filename": filename, "content_type": content_type, "size": size}).json()

    def send_file(self, ticket: dict, data: bytes, filename: str, content_type: str) -> None:
        files = {"file": (filename, data, content_type)}
        response = self._plain.post(ticket["url"], data=ticket["fields"], files=files)
        if response.status_code not in (200, 201, 204):
            raise ApiError(response.status_code, response.text)

    def photo(self, photo_id: str) -> dict:
        return self._call("GET", f"/photos/{photo_id}").json()

    def list_photos(self, *, limit: int = 50, cursor: str | None = None) -> dict:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return self._call("GET", "/photos", params=params).json()

    def all_photos(self) -> list[dict]:
        items, cursor = [], None
        while True:
            page = self.list_photos(limit=100, cursor=cursor)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def delete(self, photo_id: str) -> None:
        self._call("DELETE", f"/photos/{photo_id}")

    def search(self, query: str, *, limit: int = 50) -> dict:
        return self._call("GET", "/search", params={"q": query, "limit": limit}).json()

    def feedback(self, event: dict) -> dict:
        """POST /feedback: one correction (feedback.models request body); the recorded event."""
        return self._call("POST", "/feedback", json=event).json()

    def feedback_for(self, photo_id: str) -> list[dict]:
        return self._call("GET", "/feedback", params={"photo_id": photo_id}).json()

    def undo_feedback(self, feedback_id: str) -> dict:
        return self._call("DELETE", f"/feedback/{feedback_id}").json()

    def review(self, *, limit: int = 20, kind: str | None = None) -> dict:
        """GET /review: the least certain questions first, each with its yes/no POST /feedback bodies."""
        params: dict = {"limit": limit}
        if kind:
            params["kind"] = kind
        return self._call("GET", "/review", params=params).json()

    def analysis_progress(self) -> dict:
        """GET /analysis/progress: {waiting, analysing, done, failed} photos of yours."""
        return self._call("GET", "/analysis/progress").json()

    def wait_until_analysed(self, *, timeout: float = 300.0, on_progress=None) -> dict:
        """Polls GET /analysis/progress until nothing waits or is being analysed (or the deadline); the last
        answer. `on_progress(progress)` sees each answer."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            progress = self.analysis_progress()
            if on_progress is not None:
                on_progress(progress)
            if progress["waiting"] + progress["analysing"] == 0 or time.monotonic() > deadline:
                return progress
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def people(self) -> list[dict]:
        return self._call("GET", "/people").json()

    def name_person(self, person_id: str, name: str) -> dict:
        return self._call("PATCH", f"/people/{person_id}", json={"name": name}).json()

    def upload(self, path: Path, *, content_type: str | None = None) -> str:
        content_type = content_type or CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
        if content_type is None:
            raise ApiError(400, f"cannot tell the content type of {path.name}")
        return self.upload_bytes(path.read_bytes(), path.name, content_type)

    def upload_bytes(self, data: bytes, filename: str, content_type: str) -> str:
        ticket = self.start_upload(filename, content_type, max(len(data), 1))
        self.send_file(ticket, data, filename, content_type)
        return ticket["photo_id"]

    def wait_until_processed(self, photo_id: str, *, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            photo = self.photo(photo_id)
            if photo["status"] in FINAL_STATUSES or time.monotonic() > deadline:
                return photo
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
