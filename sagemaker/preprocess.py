"""Processing step: the feedback dataset + feature snapshot -> per-owner training and held-out examples.

SageMaker Processing: input /opt/ml/processing/input/dataset (feedback/ and features/), output
/opt/ml/processing/output/{train,test}/ (tagging.jsonl, faces.jsonl, face_pairs.jsonl) and summary.json. Locally
the Trainer passes --input and --output, or the channel `dataset` (SM_CHANNEL_DATASET) and SM_OUTPUT_DATA_DIR. The split is by photo, deterministic, ~25 % held out
(photo_organizer.learning.examples).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (_HERE, _HERE.parent / "lambdas"):  # script_mode beside; photo_organizer beside or in ../lambdas
    if str(_path) not in sys.path and (_path == _HERE or (_path / "photo_organizer").is_dir()):
        sys.path.insert(0, str(_path))

import script_mode  # noqa: E402
from photo_organizer.learning.examples import TEST_SHARE, build_splits  # noqa: E402

INPUT = "/opt/ml/processing/input/dataset"
OUTPUT = "/opt/ml/processing/output"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=script_mode.processing_path("dataset", INPUT), type=Path)
    parser.add_argument("--output", default=script_mode.processing_output(OUTPUT), type=Path)
    parser.add_argument("--test-share", "--test_share", dest="test_share", default=TEST_SHARE, type=float)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring arguments {unknown}")
    summary = build_splits(args.input, args.output, test_share=args.test_share)
    print(json.dumps({k: summary[k] for k in ("events", "active_events", "photos")} | {
        side: {k: summary[side][k] for k in ("tagging_examples", "faces", "face_pairs")} for side in ("train", "test")
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
