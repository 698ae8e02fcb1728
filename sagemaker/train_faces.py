"""Training step (scikit-learn container, script mode): per-owner face matchers -> $SM_MODEL_DIR/model.json.

Channel `train` (SM_CHANNEL_TRAIN): preprocess.py's train/ folder. Hyperparameters: --min-pairs (labelled pairs
an owner needs, both kinds), --c, --projection auto|on|off (the NCA projection head on dlib descriptors; auto
keeps it only when it separates cross-fitted pairs better), --min-projection-faces, --seed.
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
    script_mode.hyperparameter(parser, "min-pairs", int)
    script_mode.hyperparameter(parser, "c", float)
    parser.add_argument("--projection", choices=("auto", "on", "off"), default=None)
    script_mode.hyperparameter(parser, "min-projection-faces", int)
    script_mode.hyperparameter(parser, "seed", int)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring arguments {unknown}")
    document = training_core.train_face_matchers(script_mode.channel("train"), **vars(args))
    training_core.write_json_atomic(script_mode.model_dir() / training_core.MODEL_FILE, document)
    summary = {
        "owners": {o: {"threshold": m["threshold"], "projection": m["info"].get("projection")}
                   for o, m in document["owners"].items()},
        "skipped": document["skipped"],
    }
    script_mode.write_summary("faces_training.json", summary)
    script_mode.print_owner_counts(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
