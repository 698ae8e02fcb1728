"""A Rekognition stand-in on loopback for the Glue job tests (moto implements no collections and no IndexFaces).

It speaks the service's own wire protocol (AWS JSON 1.1: `POST /`, `X-Amz-Target: RekognitionService.<Op>`,
errors as HTTP 4xx/5xx with `{"__type": code, "message": ...}`), so the real RekognitionAnalyzer and botocore run
unchanged in Spark's Python workers, which reach it through AWS_ENDPOINT_URL_REKOGNITION. Responses replay the
recorded shapes in tests/data/rekognition. It counts calls per API and per photo, keeps real per-user
collections (IndexFaces / ListFaces / DeleteFaces / SearchFaces agree with each other), and injects faults:

- `throttle_first`: the first N image calls (and SearchFaces calls) answer ThrottlingException and
  ProvisionedThroughputExceededException in turn (HTTP 400, as the service does), so the client's back-off must
  absorb them;
- `refuse`: photos that always get InvalidImageFormatException;
- `broken`: photos whose calls of the given APIs answer HTTP 500 (a service fault that outlasts the retries).

SearchFaces needs to know who is who: every face may carry an *identity* (a test's ground truth, never sent over
the wire), given per face by `add_face` or per photo by `StandinConfig.identities` for faces IndexFaces creates.
A search matches the other faces of the searched face's identity (Similarity 99.x, slightly different per pair,
the same in both directions), plus faces of `lookalikes` identity pairs at the given similarity; faces without an
identity match nothing. Matches below FaceMatchThreshold are left out and at most MaxFaces come back, best first,
in the documented SearchFaces shape (SearchedFaceId, FaceMatches[{Similarity, Face}], FaceModelVersion).
"""

from __future__ import annotations

import copy
import hashlib
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
    identities: dict[str, str] = field(default_factory=dict)  # photo id -> identity of the faces IndexFaces makes
    lookalikes: dict[frozenset[str], float] = field(default_factory=dict)  # {identity, identity} -> Similarity


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
            self.searched: Counter[str] = Counter()  # face id -> successful SearchFaces calls
            self.attempts: Counter[str] = Counter()  # every request per operation, faults included
            self.faults: Counter[str] = Counter()  # error code -> answers
            self._throttle_codes = itertools.cycle(THROTTLE_CODES)
            if not hasattr(self, "collections"):
                self.collections: dict[str, dict[str, dict[str, Any]]] = {}
                self.identity_of: dict[str, str] = {}  # face id -> identity (kept with the collections)

    def set_broken(self, broken: Mapping[str, Iterable[str]]) -> None:
        with self._lock:
            self.config.broken = {photo: frozenset(apis) for photo, apis in broken.items()}

    def add_face(self, collection_id: str, photo_id: str, identity: str | None) -> str:
        """A face indexed from photo_id, as IndexFaces would have stored it (the collection is created if
        needed); returns its new FaceId."""
        with self._lock:
            collection = self.collections.setdefault(collection_id, {})
            face = dict(_recorded("index_faces.json")["FaceRecords"][0]["Face"])
            face.update(FaceId=str(uuid.uuid4()), ExternalImageId=photo_id)
            collection[face["FaceId"]] = face
            if identity is not None:
                self.identity_of[face["FaceId"]] = identity
            return face["FaceId"]

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

    def _throttled(self) -> tuple[int, dict[str, Any]] | None:
        if self.config.throttle_first > 0:
            self.config.throttle_first -= 1
            return self._error(400, next(self._throttle_codes), "Rate exceeded")
        return None

    def _image_call(self, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        photo_id = _photo_of(request)
        config = self.config
        if throttled := self._throttled():
            return throttled
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
                if request["ExternalImageId"] in config.identities:
                    self.identity_of[record["Face"]["FaceId"]] = config.identities[request["ExternalImageId"]]
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

    # ---- SearchFaces: billed, with its own quota -----------------------------------------------------------------

    def _op_SearchFaces(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        if throttled := self._throttled():
            return throttled
        collection = self.collections.get(request["CollectionId"])
        if collection is None:
            return self._error(400, "ResourceNotFoundException", "collection not found")
        searched = request["FaceId"]
        if searched not in collection:
            return self._error(400, "InvalidParameterException", f"face {searched} is not in the collection")
        threshold = float(request.get("FaceMatchThreshold", 80.0))
        identity = self.identity_of.get(searched)
        matches = []
        for face_id, face in collection.items():
            other = self.identity_of.get(face_id)
            if face_id == searched or identity is None or other is None:
                continue
            if other == identity:
                similarity = 99.0 + _jitter(searched, face_id)
            else:
                similarity = self.config.lookalikes.get(frozenset((identity, other)))
            if similarity is not None and similarity >= threshold:
                matches.append({"Similarity": similarity, "Face": dict(face)})
        matches.sort(key=lambda m: (-m["Similarity"], m["Face"]["FaceId"]))
        self.calls["SearchFaces"] += 1
        self.searched[searched] += 1
        return 200, {
            "SearchedFaceId": searched,
            "FaceMatches": matches[: int(request.get("MaxFaces") or 4096)],
            "FaceModelVersion": "7.0",
        }


def _photo_of(request: dict[str, Any]) -> str:
    """IndexFaces names the photo (ExternalImageId); every call names the preview object previews/{owner}/{id}.jpg."""
    if request.get("ExternalImageId"):
        return request["ExternalImageId"]
    name = (request.get("Image") or {}).get("S3Object", {}).get("Name", "")
    return name.rsplit("/", 1)[-1].removesuffix(".jpg")


def _jitter(a: str, b: str) -> float:
    """0..0.99, the same for (a, b) and (b, a): real similarities differ per pair and are symmetric."""
    low, high = sorted((a, b))
    return int(hashlib.sha256(f"{low}/{high}".encode()).hexdigest()[:4], 16) % 100 / 100
