"""Write a one-page stand-in for the web app's build into build/web when no build is there (never over a build).

The WebStack ships build/web (stacks/web.py); the app itself is built from web/ with Vite. `make synth` runs this
only when this tree has no web/ yet, so synth keeps working offline; a deploy of the stand-in shows a page saying
the app was not built.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Photo Organizer</title></head>
<body><p>The Photo Organizer web app was not built into this deployment: build web/ and deploy again.</p></body>
</html>
"""


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else ROOT / "build" / "web"
    index = target / "index.html"
    if index.exists():
        return 0
    target.mkdir(parents=True, exist_ok=True)
    index.write_text(PAGE)
    print(f"wrote a placeholder web app into {target} (no web/ build in this tree)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
