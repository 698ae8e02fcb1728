"""A Rekognition stand-in on loopback for the Glue job tests (moto implements no collections and no IndexFaces).

It speaks the service's own wire protocol (AWS JSON 1.1: `POST /`, `X-Amz-Target: RekognitionService.<Op>`,
errors as HTTP 4xx/5xx with `{"__type": code, "message": ...}`), so the real RekognitionAnalyzer and botocore run
unchanged in Spark's Python workers, which reach it through AWS_ENDPOINT_URL_REKOGNITION. Responses replay the
recorded shapes in tests/data/rekognition. It counts calls per API and per photo, keeps real per-user
collections (IndexFaces / ListFaces / DeleteFaces agree with each other), and injects faults:

- `throttle_first`: the first N image calls answer ThrottlingException and ProvisionedThroughputExceededException
  in turn (HTTP 400, as the service does), so the client's back-off must absorb them;
- `refuse`: photos that always get InvalidImageFormatException;
- `broken`: photos whose calls of the given APIs answer HTTP 500 (a service fault that outlasts the retries).
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "rekognition"
IMAGE_APIS = ("DetectLabels", "DetectModerationLabels", "DetectText", "IndexFaces")
THROTTLE_CODES = ("ThrottlingException", "ProvisionedThroughputExceededException")


def _recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def _label(name: str, confidence: float, parents: Iterable[str] = (), categories: Iterable[str] = ()) -> dict:
    """One DetectLabels entry in the recorded LabelModelVersion 3.0 shape."""
    return {
        "Name": name,
        "Confidence": confidence,
        "Instances": [],
        "Parents": [{"Name": p} for p in parents],
        "Aliases": [],
        "Categories": [{"Name": c} for c in categories],
    }


def labels_response(kind: str) -> dict[str, Any]:
    """The recorded DetectLabels response, edited per kind of photo: 'people' keeps it as recorded (a person on a
    beach: IndexFaces follows with consent); 'scenery' drops the person; 'text' is scenery plus a sign with text
    (DetectText follows); 'people+text' has both."""
    response = copy.deepcopy(_recorded("detect_labels.json"))
    if kind in ("scenery", "text"):
        response["Labels"] = [label for label in response["Labels"] if label["Name"] != "Person"]
    if kind in ("text", "people+text"):
        response["Labels"].append(_label("Text", 97.5, categories=["Text and Documents"]))
    return response


@dataclass
class StandinConfig:
    kinds: dict[str, str] = field(default_factory=dict)  # photo id -> labels_response kind (default 'scenery')
    throttle_first: int = 0
    refuse: frozenset[str] = frozenset()
    broken: dict[str, frozenset[str]] = field(default_factory=dict)  # photo id -> APIs answering 500


class RekognitionStandin:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="rekognition-standin", daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> RekognitionStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self, config: StandinConfig | None = None) -> None:
        """New faults and scripts; counters start again. Collections are kept unless forget_collections()."""
        with self._lock:
            self.config = config or StandinConfig()
            self.calls: Counter[str] = Counter()  # successful (billed) calls per API
            self.calls_per_photo: Counter[tuple[str, str]] = Counter()  # (API, photo id) -> billed calls
            self.attempts: Counter[str] = Counter()  # every request per operation, faults included
            self.faults: Counter[str] = Counter()  # error code -> answers
            self._throttle_codes = itertools.cycle(THROTTLE_CODES)
            if not hasattr(self, "collections"):
                self.collections: dict[str, dict[str, dict[str, Any]]] = {}

    def set_broken(self, broken: Mapping[str, Iterable[str]]) -> None:
        with self._lock:
            self.config.broken = {photo: frozenset(apis) for photo, apis in broken.items()}

    def faces_per_photo(self, collection_id: str) -> Counter[str]:
        with self._lock:
            faces = self.collections.get(collection_id, {}).values()
            return Counter(face["ExternalImageId"] for face in faces)

    # ---- the protocol ---------------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                service, _, operation = target.partition(".")
                if service != "RekognitionService" or not operation:
                    return self._answer(400, {"__type": "UnknownOperationException", "message": target})
                try:
                    status, payload = standin._dispatch(operation, json.loads(body or b"{}"))
                except Exception as exc:  # a bug in the stand-in must show as a 500, not hang the client
                    status, payload = 500, {"__type": "InternalServerError", "message": repr(exc)}
                self._answer(status, payload)

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def _dispatch(self, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.attempts[operation] += 1
            if operation in IMAGE_APIS:
                return self._image_call(operation, request)
            handler = getattr(self, f"_op_{operation}", None)
            if handler is None:
                return self._error(400, "UnknownOperationException", f"the stand-in does not implement {operation}")
            return handler(request)

    def _error(self, status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
        self.faults[code] += 1
        return status, {"__type": code, "message": message}

    def _image_call(self, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        photo_id = _photo_of(request)
        config = self.config
        if config.throttle_first > 0:
            config.throttle_first -= 1
            code = next(self._throttle_codes)
            return self._error(400, code, "Rate exceeded")
        if photo_id in config.refuse:
            return self._error(400, "InvalidImageFormatException", "Request has invalid image format")
        if operation in config.broken.get(photo_id, ()):
            return self._error(500, "InternalServerError", "Internal server error")
        kind = config.kinds.get(photo_id, "scenery")
        if operation == "DetectLabels":
            response = labels_response(kind)
        elif operation == "DetectModerationLabels":
            response = _recorded("detect_moderation_labels_none.json")
        elif operation == "DetectText":
            response = _recorded("detect_text.json")
        else:
            collection = self.collections.get(request["CollectionId"])
            if collection is None:
                return self._error(400, "ResourceNotFoundException", f"collection {request['CollectionId']} not found")
            response = _recorded("index_faces.json")
            for record in response["FaceRecords"]:
                # The service gives every indexed face a new id and echoes the caller's ExternalImageId.
                record["Face"].update(FaceId=str(uuid.uuid4()), ExternalImageId=request["ExternalImageId"])
                collection[record["Face"]["FaceId"]] = dict(record["Face"])
        self.calls[operation] += 1
        self.calls_per_photo[(operation, photo_id)] += 1
        return 200, response

    # ---- collections: free calls, not counted as billed image calls -------------------------------------------

    def _op_CreateCollection(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        collection_id = request["CollectionId"]
        if collection_id in self.collections:
            return self._error(400, "ResourceAlreadyExistsException", f"{collection_id} already exists")
        self.collections[collection_id] = {}
        return 200, {"StatusCode": 200, "CollectionArn": f"aws:rekognition:us-east-1:123456789012:collection/{collection_id}",
                     "FaceModelVersion": "7.0"}

    def _op_DeleteCollection(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        if self.collections.pop(request["CollectionId"], None) is None:
            return self._error(400, "ResourceNotFoundException", "collection not found")
        return 200, {"StatusCode": 200}

    def _op_ListFaces(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        collection = self.collections.get(request["CollectionId"])
        if collection is None:
            return self._error(400, "ResourceNotFoundException", "collection not found")
        faces = sorted(collection.values(), key=lambda f: f["FaceId"])
        start = int(request.get("NextToken") or 0)
        size = int(request.get("MaxResults") or 1000)
        page = faces[start : start + size]
        response: dict[str, Any] = {"Faces": page, "FaceModelVersion": "7.0"}
        if start + size < len(faces):
            response["NextToken"] = str(start + size)
        return 200, response

    def _op_DeleteFaces(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        collection = self.collections.get(request["CollectionId"])
        if collection is None:
            return self._error(400, "ResourceNotFoundException", "collection not found")
        deleted = [face_id for face_id in request["FaceIds"] if collection.pop(face_id, None) is not None]
        return 200, {"DeletedFaces": deleted}


def _photo_of(request: dict[str, Any]) -> str:
    """IndexFaces names the photo (ExternalImageId); every call names the preview object previews/{owner}/{id}.jpg."""
    if request.get("ExternalImageId"):
        return request["ExternalImageId"]
    name = (request.get("Image") or {}).get("S3Object", {}).get("Name", "")
    return name.rsplit("/", 1)[-1].removesuffix(".jpg")
