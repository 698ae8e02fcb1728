"""Processing step: the feedback dataset + feature snapshot -> every labelled example, each with its fold.

SageMaker Processing: input /opt/ml/processing/input/dataset (feedback/ and features/), output
/opt/ml/processing/output/labelled/ (tagging.jsonl, faces.jsonl, face_pairs.jsonl) and summary.json. Locally the
Trainer passes --input and --output, or the channel `dataset` (SM_CHANNEL_DATASET) and SM_OUTPUT_DATA_DIR. The
training steps fit on all of labelled/; the evaluation cross-fits over its --folds folds (by photo content,
deterministic: photo_organizer.learning.cross_fitting).

--approved-tagging (input /opt/ml/processing/input/approved/tagging, channel `approved_tagging`): the approved
tagging model's directory (model.json or model.tar.gz; absent or empty: none approved). When its document records
the instant of the newest feedback it was trained on (feedback_through), labelled/ also gets the tagging examples
built from the feedback up to that instant (tagging_as_approved.jsonl): the evaluation judges the candidate in
sample too on the labels of a few-positive tag the approved model was fitted on as they are now
(training_core.evaluate).
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
import training_core  # noqa: E402
from photo_organizer.learning.cross_fitting import FOLDS  # noqa: E402
from photo_organizer.learning.examples import build_examples  # noqa: E402

INPUT = "/opt/ml/processing/input/dataset"
OUTPUT = "/opt/ml/processing/output"
APPROVED_TAGGING = "/opt/ml/processing/input/approved/tagging"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=script_mode.processing_path("dataset", INPUT), type=Path)
    parser.add_argument("--output", default=script_mode.processing_output(OUTPUT), type=Path)
    parser.add_argument("--folds", default=FOLDS, type=int, help="cross-fitting folds of the evaluation")
    parser.add_argument("--approved-tagging", dest="approved_tagging", type=Path,
                        default=script_mode.processing_path("approved_tagging", APPROVED_TAGGING))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring arguments {unknown}")
    if args.folds < 2:
        parser.error("--folds must be at least 2: each fold is judged by a model fitted on the others")
    approved = training_core.load_model_document(args.approved_tagging) or {}
    summary = build_examples(args.input, args.output, folds=args.folds,
                             approved_through=approved.get("feedback_through"))
    print(json.dumps({k: summary[k] for k in ("events", "active_events", "photos", "folds", "tagging_examples",
                                              "faces", "face_pairs", "face_pairs_across_folds",
                                              "tagging_examples_as_approved")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
