"""Evaluation step (Processing): candidate vs approved vs untrained baseline on the same labelled examples.

The candidate is judged cross-fitted: its recipe (the hyperparameters its model.json records) is refitted without
each fold and predicts that fold, so every labelled example is judged by a model that never saw it; the approved
model is judged as it is (in sample for what it was fitted on: conservative), and so is the candidate on the labels
of a few-positive tag the approved model was fitted on (labelled/tagging_as_approved.jsonl, preprocess's rebuild of
its training examples). See training_core.evaluate.

Inputs (SageMaker Processing paths; each overridable by an argument, or by the channel of the same name,
SM_CHANNEL_EXAMPLES, SM_CHANNEL_CANDIDATE_TAGGING, ..., when the local Trainer runs it): --examples
(preprocess.py's labelled/: every labelled example with its fold), --candidate-tagging,
--candidate-faces (the training jobs' model dirs: model.json or model.tar.gz), --approved-tagging,
--approved-faces (the approved models; absent or empty = none approved yet: the baseline). Output:
--output (SM_OUTPUT_DATA_DIR under the Trainer)/evaluation.json with, per kind, the metrics and the gate's decision ("promote", "decision",
"approved_plus_margin": what the pipeline's ConditionStep reads).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import script_mode  # noqa: E402
import training_core  # noqa: E402

BASE = "/opt/ml/processing"
EVALUATION_FILE = "evaluation.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=Path,
                        default=script_mode.processing_path("examples", f"{BASE}/input/examples"))
    for name in ("candidate-tagging", "candidate-faces", "approved-tagging", "approved-faces"):
        channel = name.replace("-", "_")
        parser.add_argument(f"--{name}", type=Path,
                            default=script_mode.processing_path(channel, f"{BASE}/input/{channel}"))
    parser.add_argument("--output", type=Path, default=script_mode.processing_output(f"{BASE}/evaluation"))
    parser.add_argument("--margin", type=float, default=training_core.DEFAULT_MARGIN)
    parser.add_argument("--min-examples", "--min_examples", dest="min_examples", type=int,
                        default=training_core.DEFAULT_MIN_EXAMPLES)
    parser.add_argument("--min-each-answer", "--min_each_answer", dest="min_each_answer", type=int,
                        default=training_core.DEFAULT_MIN_EACH_ANSWER,
                        help="judged same- and different-person pairs (faces), positive labels (tags) at least")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring arguments {unknown}")
    result = training_core.evaluate(
        args.examples,
        candidate_tagging=training_core.load_model_document(args.candidate_tagging),
        approved_tagging=training_core.load_model_document(args.approved_tagging),
        candidate_faces=training_core.load_model_document(args.candidate_faces),
        approved_faces=training_core.load_model_document(args.approved_faces),
        margin=args.margin,
        min_examples=args.min_examples,
        min_each_answer=args.min_each_answer,
    )
    training_core.write_json_atomic(args.output / EVALUATION_FILE, result)
    print(json.dumps({
        kind: {"candidate": result[kind]["candidate"][metric], "approved": result[kind]["approved"][metric],
               "baseline": result[kind]["baseline"][metric], "promote": result[kind]["promote"],
               "reason": result[kind]["decision"]["reason"]}
        for kind, metric in (("tagging", "macro_f1"), ("faces", "pair_f1"))
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
