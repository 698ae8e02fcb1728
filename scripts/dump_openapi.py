"""Writes the gateway's OpenAPI document to build/openapi.json without starting a server: the web app's typed API
client is generated from it (web/package.json `gen:api`), so the app and the API cannot drift apart unnoticed."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))


def main(argv: list[str]) -> int:
    from photo_organizer.handlers.api import openapi_json

    out = Path(argv[1]) if len(argv) > 1 else ROOT / "build" / "openapi.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = openapi_json()
    if not out.exists() or out.read_text() != document:  # untouched when unchanged: make's timestamps stay put
        out.write_text(document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
