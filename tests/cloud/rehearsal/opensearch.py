"""OpenSearch at the HTTP level: a local HTTPS server that records every request the functions send (method, path,
query, body, the SigV4 access key that signed it) and answers with the recorded response shapes of
tests/data/opensearch/. No OpenSearch server can run here (see TOOLCHAIN.md); what this proves is the requests and
how the code reads real response shapes, not query semantics.

It keeps the documents of bulk writes (by `_id`, with their external version) so that a search answers with the
owner's live documents in the recorded search response shape, and a delete can be seen as a tombstone.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

RECORDED = Path(__file__).resolve().parents[2] / "data" / "opensearch"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any  # parsed JSON, a list for NDJSON, or the raw text
    access_key: str | None  # from the SigV4 Authorization header
    signed_service: str | None  # "es" | "aoss"


@dataclass
class Document:
    source: dict
    version: int
    routing: str | None


@dataclass
class OpenSearchStandIn:
    directory: Path
    requests: list[RecordedRequest] = field(default_factory=list)
    documents: dict[str, Document] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.directory / "cert.pem"
        key_file = self.directory / "key.pem"
        _self_signed(self.ca_file, key_file)
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                status, body = stand_in._answer(self.command, self.path, raw, self.headers.get("Authorization", ""))
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests_by(self, access_keys: set[str]) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.access_key in access_keys]

    # ---- answers -----------------------------------------------------------------------------------------

    def _answer(self, method: str, target: str, raw: str, authorization: str) -> tuple[int, Any]:
        parts = urlsplit(target)
        body: Any = raw
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = [json.loads(line) for line in raw.splitlines() if line.strip()]
        credential = re.search(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/", authorization)
        request = RecordedRequest(method, parts.path, parse_qs(parts.query), body,
                                  credential.group(1) if credential else None,
                                  credential.group(2) if credential else None)
        with self._lock:
            self.requests.append(request)
            if parts.path.endswith("/_bulk"):
                return 200, self._bulk(body if isinstance(body, list) else [body])
            if parts.path.endswith("/_msearch"):
                return 200, self._msearch(body if isinstance(body, list) else [body])
            if parts.path.endswith("/_search"):
                return 200, self._search(body if isinstance(body, dict) else {}, request.query)
            if parts.path.endswith("/_delete_by_query"):
                return 200, self._delete_by_query(body if isinstance(body, dict) else {}, request.query)
            if parts.path.endswith("/_count"):
                # The product counts one owner's documents, routed by owner (count_body): so does the stand-in.
                owner = (request.query.get("routing") or [None])[0]
                return 200, {"count": len(self._live(owner)), "_shards": {"total": 1, "successful": 1, "failed": 0}}
        return 200, {"acknowledged": True}

    def _bulk(self, lines: list[dict]) -> dict:
        shape = json.loads((RECORDED / "bulk_response_conflict.json").read_text())
        written = next(item["index"] for item in shape["items"] if item["index"]["status"] == 201)
        items, index = [], 0
        while index < len(lines):
            (action, meta), = lines[index].items()
            index += 1
            source = None
            if action in ("index", "create", "update"):
                source = lines[index]
                index += 1
            doc_id, version = meta["_id"], int(meta.get("version", 1))
            current = self.documents.get(doc_id)
            if current is not None and meta.get("version_type") == "external" and current.version >= version:
                conflict = next(i["index"] for i in shape["items"] if i["index"]["status"] == 409)
                items.append({action: {**copy.deepcopy(conflict), "_id": doc_id}})
                continue
            if action == "delete":
                self.documents.pop(doc_id, None)
            else:
                self.documents[doc_id] = Document(source or {}, version, meta.get("routing"))
            item = {**copy.deepcopy(written), "_id": doc_id, "_index": meta.get("_index", written["_index"]),
                    "_version": version, "result": "created" if current is None else "updated",
                    "status": 201 if current is None else 200}
            items.append({action: item})
        return {"took": shape["took"], "errors": any(i[a]["status"] >= 300 for i in items for a in i), "items": items}

    def _delete_by_query(self, body: dict, query: dict[str, list[str]]) -> dict:
        """The two queries the product sends: an owner's live documents (routed: account erasure) and old tombstones
        (purge_tombstones, unrouted: answered as deleting none). Response in the documented shape."""
        owner = (query.get("routing") or [None])[0]
        doomed = [doc_id for doc_id, _ in self._live(owner)] if owner is not None else []
        for doc_id in doomed:
            del self.documents[doc_id]
        return {"took": 1, "timed_out": False, "total": len(doomed), "deleted": len(doomed), "batches": 1,
                "version_conflicts": 0, "noops": 0, "failures": []}

    def _live(self, owner: str | None = None) -> list[tuple[str, Document]]:
        return [(doc_id, doc) for doc_id, doc in self.documents.items()
                if not doc.source.get("deleted") and (owner is None or doc.source.get("owner") == owner)]

    def _hits(self, owner: str | None) -> list[dict]:
        hits = []
        for doc_id, doc in sorted(self._live(owner), key=lambda item: item[1].source.get("sort_time", ""),
                                  reverse=True):
            sort_ms = _epoch_ms(doc.source.get("sort_time"))
            hits.append({"_index": "photos-v1", "_id": doc_id, "_score": 1.0, "_routing": doc.routing,
                         "_source": {"photo_id": doc.source.get("photo_id")},
                         "sort": [1.0, sort_ms, doc.source.get("photo_id")], "matched_queries": []})
        return hits

    def _search(self, body: dict, query: dict[str, list[str]]) -> dict:
        owner = (query.get("routing") or [None])[0]
        aggregations = body.get("aggs") or body.get("aggregations") or {}
        if any("|" in name for name in aggregations):
            return json.loads((RECORDED / "suggest_response.json").read_text())
        response = json.loads((RECORDED / "search_response.json").read_text())
        hits = self._hits(owner)
        response["hits"]["hits"] = hits
        response["hits"]["total"] = {"value": len(hits), "relation": "eq"}
        response["hits"]["max_score"] = 1.0 if hits else None
        return response

    def _msearch(self, lines: list[dict]) -> dict:
        owner = next((line.get("routing") for line in lines[::2] if isinstance(line, dict)), None)
        response = json.loads((RECORDED / "msearch_response_hybrid.json").read_text())
        hits = self._hits(owner)
        for part in response["responses"]:
            part["hits"]["hits"] = copy.deepcopy(hits)
            part["hits"]["total"] = {"value": len(hits), "relation": "eq"}
        return response


def _epoch_ms(value: str | None) -> int:
    if not value:
        return 0
    return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _self_signed(cert_file: Path, key_file: Path) -> None:
    """A certificate for 127.0.0.1, trusted by the functions through SSL_CERT_FILE (opensearch-py reads it)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rehearsal-opensearch")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
