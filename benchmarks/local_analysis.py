"""Local analyzer throughput: photos/s on this machine's cores, with 1 and 2 worker processes.

Uploads copies of the sample photos into a fresh local library (each copy cropped and recoloured a little so
it is neither an exact nor a near duplicate, which would be copied instead of analysed), then runs
`photo-organizer analyze`'s runner. Model loading is measured apart from the steady state.

    .venv/bin/python benchmarks/local_analysis.py [--copies 3]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.bootstrap import build_services  # noqa: E402
from photo_organizer.keys import PhotoKeys  # noqa: E402
from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, analyse_library  # noqa: E402
from photo_organizer.models import UploadRequest  # noqa: E402
from photo_organizer.services.ingest import ObjectCreated  # noqa: E402
from photo_organizer.settings import Settings  # noqa: E402

OWNER = "bench-owner"


def variant(path: Path, index: int) -> bytes:
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        crop = 0.04 * (index + 1)
        image = image.crop((int(w * crop), int(h * crop), int(w * (1 - crop / 2)), int(h * (1 - crop / 2))))
        image = ImageEnhance.Color(image).enhance(1.0 + 0.15 * index).rotate(index * 2, expand=False)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        return out.getvalue()


def library(data_dir: Path, copies: int) -> int:
    services = build_services(Settings(data_dir=data_dir))
    count = 0
    for path in sorted((ROOT / "samples").glob("*")):
        if path.suffix.lower() not in {".jpg", ".png", ".heic"}:
            continue
        for index in range(copies):
            data = variant(path, index)
            ticket = services.uploads.start(OWNER, UploadRequest(filename=path.name, content_type="image/jpeg", size=len(data)))
            key = PhotoKeys.for_photo(OWNER, ticket.photo_id).original
            services.originals.put(key, data, content_type="image/jpeg")
            services.ingest.process(ObjectCreated(bucket="originals", key=key))
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    model = ROOT / LABEL_MODEL
    if not model.exists():
        raise SystemExit("run `make label-model` first")
    print(f"local analysis throughput; {args.copies} variants of each sample photo")
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            photos = library(data_dir, args.copies)
            started = time.perf_counter()
            summary = analyse_library(data_dir, workers=workers, label_model=model)
            elapsed = time.perf_counter() - started
            analysed = summary.photos - summary.copied - sum(summary.failures.values())
            print(
                f"workers={workers}: {photos} photos, {analysed} analysed, {summary.copied} copied, "
                f"{elapsed:.1f} s incl. model load -> {analysed / elapsed:.2f} photos/s"
            )


if __name__ == "__main__":
    main()
