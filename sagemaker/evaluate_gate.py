"""The Evaluate job's entry: runs evaluate.py, then writes the promotion gate into evaluation.json.

    evaluate_gate.py --margin M --min-examples N --evaluation OUT/evaluation.json -- evaluate.py [ARGS...]

SageMaker pipeline conditions compare values but cannot add them, so "candidate >= approved + margin" needs the sum
written down: for each kind present, `<kind>.gate = {"metric", "approved", "margin", "required", "min_examples",
"examples", "promote"}` with required = approved + margin. The pipeline's ConditionStep reads `gate.required` and
the held-out count from the property file. `promote` states the same rule's outcome for people reading the file;
the ConditionStep does not read it.

Standard library only, Python 3.10.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

METRIC = {"tagging": ("macro_f1", "examples"), "faces": ("pair_f1", "pairs")}


def gate(evaluation: dict, *, margin: float, min_examples: int) -> dict:
    """evaluation.json with `<kind>.gate` added for every kind it holds (the input is not modified)."""
    out = json.loads(json.dumps(evaluation))
    for kind, (metric, count) in METRIC.items():
        section = out.get(kind)
        if not isinstance(section, dict):
            continue
        candidate = float((section.get("candidate") or {}).get(metric) or 0.0)
        approved_scores = section.get("approved") or section.get("baseline") or {}
        approved = float(approved_scores.get(metric) or 0.0)
        examples = int(section.get(count) or 0)
        required = round(approved + margin, 6)
        section["gate"] = {
            "metric": metric, "approved": approved, "margin": margin, "required": required,
            "min_examples": min_examples, "examples": examples,
            "promote": candidate >= required and examples >= min_examples,
        }
    return out


def main(argv: list[str]) -> int:
    if "--" not in argv:
        raise SystemExit("usage: evaluate_gate.py --margin M --min-examples N --evaluation FILE -- SCRIPT [ARGS...]")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="evaluate_gate.py")
    parser.add_argument("--margin", type=float, required=True)
    parser.add_argument("--min-examples", type=int, required=True)
    parser.add_argument("--evaluation", type=Path, required=True)
    options = parser.parse_args(argv[:split])
    script, *args = argv[split + 1:]
    here = Path(__file__).resolve().parent
    done = subprocess.run([sys.executable, str(here / script), *args], check=False)
    if done.returncode != 0:
        return done.returncode  # a failed evaluation fails the step: nothing is promoted
    evaluation = json.loads(options.evaluation.read_text())
    gated = gate(evaluation, margin=options.margin, min_examples=options.min_examples)
    options.evaluation.write_text(json.dumps(gated, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
