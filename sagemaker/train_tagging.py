"""Training step (scikit-learn container, script mode): per-owner tagging models -> $SM_MODEL_DIR/model.json.

Channel `train` (SM_CHANNEL_TRAIN): preprocess.py's train/ folder. Hyperparameters: --min-examples (reviewed
photos an owner needs), --min-tag-examples (negatives a tag needs, and positives up to --min-tag-positives),
--min-tag-positives (default 2: a custom tag put on two photos is learnt), --c (inverse L2 strength), --seed. An owner with too little data is skipped and listed with the reason in model.json "skipped"; with no
owner trainable the file has no owners and the run still succeeds (the gate refuses it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import script_mode  # noqa: E402
import training_core  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    script_mode.hyperparameter(parser, "min-examples", int)
    script_mode.hyperparameter(parser, "min-tag-examples", int)
    script_mode.hyperparameter(parser, "min-tag-positives", int)
    script_mode.hyperparameter(parser, "c", float)
    script_mode.hyperparameter(parser, "seed", int)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring arguments {unknown}")
    document = training_core.train_tagging_models(script_mode.channel("train"), **vars(args))
    training_core.write_json_atomic(script_mode.model_dir() / training_core.MODEL_FILE, document)
    summary = {"owners": sorted(document["owners"]), "skipped": document["skipped"]}
    script_mode.write_summary("tagging_training.json", summary)
    script_mode.print_owner_counts(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
