"""OSV's query API (`POST /v1/query {package, version}` -> `{"vulns": [...]}`), answered on loopback from the advisory
snapshot that scripts/refresh_advisories.py writes, so pip-audit's own OSV service can audit the lock offline. It also
answers what the refresh script asks OSV (`POST /v1/querybatch` by package, `GET /v1/vulns/<id>`), so that script's
OSV route is tested without the network.

Matching follows the OSV schema: an entry affects a version if the version is in its explicit `versions` list, or
inside an ECOSYSTEM range, whose sorted events open at `introduced` and close before `fixed` or after
`last_affected`. Withdrawn records are served as they are (pip-audit skips them itself)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.version import InvalidVersion, Version

SNAPSHOT = Path(__file__).parent / "data" / "pypi-advisories.json"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: list[dict]) -> bool:
    """OSV's ECOSYSTEM range walk: events sorted by version ('0' first), the state flips at each event."""
    def key(event):
        (kind, value), = event.items()
        return Version("0") if value == "0" else (_version(value) or Version("0"))

    affected = False
    for event in sorted(events, key=key):
        (kind, value), = event.items()
        bound = Version("0") if value == "0" else _version(value)
        if bound is None:
            continue
        if kind == "introduced" and version >= bound:
            affected = True
        elif kind == "fixed" and version >= bound:
            affected = False
        elif kind == "last_affected" and version > bound:
            affected = False
    return affected


def affects(record: dict, name: str, version_text: str) -> bool:
    version = _version(version_text)
    for entry in record.get("affected", []):
        if entry["package"]["ecosystem"] != "PyPI" or canonical(entry["package"]["name"]) != canonical(name):
            continue
        if version_text in entry.get("versions", []):
            return True
        if version is not None and any(_in_range(version, r["events"]) for r in entry.get("ranges", [])
                                       if r["type"] == "ECOSYSTEM"):
            return True
    return False


class AdvisorySnapshot:
    def __init__(self, data: dict):
        self.data = data
        self.by_package: dict[str, list[dict]] = {}
        for record in data["vulns"].values():
            for entry in record["affected"]:
                self.by_package.setdefault(canonical(entry["package"]["name"]), []).append(record)

    @classmethod
    def load(cls, path: Path = SNAPSHOT) -> AdvisorySnapshot:
        return cls(json.loads(path.read_text()))

    def query(self, name: str, version: str) -> list[dict]:
        seen, found = set(), []
        for record in self.by_package.get(canonical(name), []):
            if record["id"] not in seen and affects(record, name, version):
                seen.add(record["id"])
                found.append(record)
        return found


@contextmanager
def osv_api_on_loopback(snapshot: AdvisorySnapshot) -> Iterator[str]:
    """The query URL of an OSV-shaped API over the snapshot; it also counts the queries it answered."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/v1/query":
                package = body["package"]
                vulns = snapshot.query(package["name"], body["version"]) if package["ecosystem"] == "PyPI" else []
                server.queries.append((package["name"], body["version"]))
                self._answer({"vulns": vulns} if vulns else {})
            elif self.path == "/v1/querybatch":
                self._answer({"results": [
                    {"vulns": [{"id": r["id"], "modified": r.get("modified", "")}
                               for r in snapshot.by_package.get(canonical(q["package"]["name"]), [])]}
                    for q in body["queries"]]})
            else:
                self.send_error(404)

        def do_GET(self):  # noqa: N802
            vuln_id = self.path.removeprefix("/v1/vulns/")
            if vuln_id in snapshot.data["vulns"]:
                self._answer(snapshot.data["vulns"][vuln_id])
            else:
                self.send_error(404)

        def _answer(self, document: dict) -> None:
            payload = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.queries = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/query", server.queries
    finally:
        server.shutdown()
        server.server_close()
