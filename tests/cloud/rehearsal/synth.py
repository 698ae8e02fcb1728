"""Synthesize the app into a directory: `python synth.py OUTDIR CONTEXT_JSON` (run by assembly.synthesize).

The same composition as app.py (stacks.app_builder.build_app over cdk.json's context), with the given context
on top, and asset metadata on so that each function names its staged code directory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(outdir: str, overrides: str) -> None:
    import aws_cdk as cdk

    from stacks.app_builder import build_app

    root = Path(__file__).resolve().parents[3]
    context = json.loads((root / "cdk.json").read_text())["context"]
    context.update(json.loads(overrides))
    app = cdk.App(context=context, outdir=outdir)
    build_app(app)
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
