"""The rehearsal's HTTP API served on 127.0.0.1, so that a real HTTP client (PhotoApiClient, the smoke command's)
talks to it unchanged: each request goes through HttpApi.request (the template's routes, its JWT authorizer, the Api
function run from its staged bundle), and the answer goes back as HTTP.

What API Gateway and the asynchronous pipeline do between two requests of a client is done by `between_requests`
(e.g. deliver the upload queue to the validator and the table stream to the indexer), called before each request:
a client that polls sees the pipeline's work as soon as it could have happened, without timed waits.

One request at a time (a plain HTTPServer in one thread): the functions are single-flight worker processes.
Response headers other than Content-Type are not reproduced (no client of this API reads them).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class LoopbackApi:
    def __init__(self, stage, *, between_requests: Callable[[], None] = lambda: None) -> None:
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) in order
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else None
                query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query).items()}
                authorization = self.headers.get("Authorization", "")
                token = authorization.removeprefix("Bearer ").strip() or None
                between_requests()
                path = unquote(parts.path)
                try:
                    status, payload = stage.http.request(self.command, path, token=token, query=query or None,
                                                         body=body)
                except Exception as exc:  # a harness failure: answer it, so the client's step reports it
                    status, payload = 500, {"message": "rehearsal harness error", "error": f"{type(exc).__name__}: {exc}"}
                loopback.requests.append((self.command, path, status))
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="rehearsal-loopback-api", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> LoopbackApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
