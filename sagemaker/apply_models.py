"""Re-application step (Processing): the approved models over the library's feature snapshot.

Inputs: --tagging, --faces (approved model dirs: model.json or model.tar.gz; absent = none), --features (a dataset
root holding features/photos.jsonl); under the local Trainer the channels tagging, faces and dataset
(SM_CHANNEL_*) and SM_OUTPUT_DATA_DIR stand in for the arguments. Outputs under --output: suggestions.jsonl (owner, photo_id, suggestions
[{tag, confidence, on_photo}]) and matchers.json (owner -> face matcher JSON), both written whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import script_mode  # noqa: E402
import training_core  # noqa: E402

BASE = "/opt/ml/processing"
SUGGESTIONS_FILE = "suggestions.jsonl"
MATCHERS_FILE = "matchers.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tagging", type=Path, default=script_mode.processing_path("tagging", f"{BASE}/input/tagging"))
    parser.add_argument("--faces", type=Path, default=script_mode.processing_path("faces", f"{BASE}/input/faces"))
    parser.add_argument("--features", type=Path,
                        default=script_mode.processing_path("dataset", f"{BASE}/input/dataset"))
    parser.add_argument("--output", type=Path, default=script_mode.processing_output(f"{BASE}/output"))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring arguments {unknown}")
    rows, matchers = training_core.apply_models(
        args.features,
        training_core.load_model_document(args.tagging),
        training_core.load_model_document(args.faces),
    )
    args.output.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".suggestions.", dir=args.output)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(temp, args.output / SUGGESTIONS_FILE)
    training_core.write_json_atomic(args.output / MATCHERS_FILE, matchers)
    print(json.dumps({"photos": len(rows), "matchers": len(matchers)}))  # counts only: the log is not erased
    return 0


if __name__ == "__main__":
    sys.exit(main())
