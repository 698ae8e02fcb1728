"""End-to-end search relevance on real photos: uploaded through the local API, analysed by the local analyzer,
people named through the API, then natural queries written by hand from what a person sees in each photo.

Prints success@3, nDCG@10 and recall@10 per query and overall for GET /search (the product) and, in the same
run, for the baseline: the same text as plain keyword search on the same index (every word required over the
text fields; no query understanding, no meaning). Also prints the cosine similarities of relevant and irrelevant
photos for the meaning-only queries, the data behind search.fusion.MEANING_FLOOR.

Photos and their sources: benchmarks/relevance_photos.md. Targets: success@3 >= 0.9, nDCG@10 >= 0.8, no query
worse than the baseline.

    .venv/bin/python benchmarks/relevance.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.bootstrap import build_services  # noqa: E402
from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, analyse_library  # noqa: E402
from photo_organizer.local_stack.client import PhotoApiClient  # noqa: E402
from photo_organizer.local_stack.stack import LocalStack  # noqa: E402
from photo_organizer.search.describe import describe  # noqa: E402
from photo_organizer.search.fusion import MEANING_FLOOR  # noqa: E402
from photo_organizer.search.models import SearchQuery  # noqa: E402
from photo_organizer.settings import Settings  # noqa: E402

SITE = Path(np.__file__).resolve().parents[1]  # site-packages


def _skimage(name: str) -> Path:
    return SITE / "skimage" / "data" / name


def _sklearn(name: str) -> Path:
    return SITE / "sklearn" / "datasets" / "images" / name


def _font(size: int) -> ImageFont.ImageFont:
    for candidate in (SITE / "matplotlib" / "mpl-data" / "fonts" / "ttf" / "DejaVuSans-Bold.ttf",
                      Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")):
        if candidate.exists():
            return ImageFont.truetype(str(candidate), size)
    return ImageFont.load_default(size)


def _exif(*, when: str | None = None, gps: tuple[float, float] | None = None) -> bytes:
    exif = Image.Exif()
    if when:
        exif[0x8769] = {0x9003: when}
    if gps:
        lat, lon = gps

        def dms(value: float) -> tuple[float, float, float]:
            value = abs(value)
            d = int(value)
            m = int((value - d) * 60)
            return (float(d), float(m), round((value - d - m / 60) * 3600, 2))

        exif[0x8825] = {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}
    return exif.tobytes()


def _jpeg(image: Image.Image, **exif: object) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90, exif=_exif(**exif))  # type: ignore[arg-type]
    return out.getvalue()


def _sign(base: Path, text: str, *, scale: int = 2) -> Image.Image:
    """A painted sign of capitals without spaces on a real photo (as a shop sign often reads)."""
    image = Image.open(base).convert("RGB")
    image = image.resize((image.width * scale, image.height * scale))
    draw = ImageDraw.Draw(image)
    font = _font(image.width // (len(text) // 2 + 4))
    box = draw.textbbox((0, 0), text, font=font)
    w, h = box[2] - box[0], box[3] - box[1]
    x, y = (image.width - w) // 2, (image.height - h) // 2
    draw.rectangle((x - 30, y - 30, x + w + 30, y + h + 40), fill=(245, 245, 240), outline=(180, 20, 20), width=8)
    draw.text((x - box[0], y - box[1]), text, fill=(20, 20, 20), font=font)
    return image


# key -> bytes of the file to upload (filename gets the key)
PHOTOS: dict[str, Callable[[], tuple[str, bytes]]] = {
    "obama": lambda: ("obama.jpg", (ROOT / "samples" / "obama.jpg").read_bytes()),
    "obama2": lambda: ("obama2.jpg", (ROOT / "samples" / "obama2.jpg").read_bytes()),
    "obama3": lambda: ("obama3.jpg", (ROOT / "samples" / "obama3.jpg").read_bytes()),
    "biden": lambda: ("biden.jpg", (ROOT / "samples" / "biden.jpg").read_bytes()),
    "coffee_sign": lambda: ("coffee_with_text.jpg", (ROOT / "samples" / "coffee_with_text.jpg").read_bytes()),
    "coffee_madison": lambda: ("coffee_exif_gps.jpg", (ROOT / "samples" / "coffee_exif_gps.jpg").read_bytes()),
    "cat": lambda: ("chelsea.png", _skimage("chelsea.png").read_bytes()),
    "astronaut": lambda: ("astronaut.png", _skimage("astronaut.png").read_bytes()),
    # DSCOVR launch, Cape Canaveral SLC-40, 11 Feb 2015 (the launch's public date and place, written as EXIF)
    "rocket": lambda: ("rocket.jpg", _jpeg(Image.open(_skimage("rocket.jpg")), when="2015:02:11 18:03:00",
                                           gps=(28.562, -80.577))),
    "cameraman": lambda: ("camera.png", _skimage("camera.png").read_bytes()),
    "coins": lambda: ("coins.png", _skimage("coins.png").read_bytes()),
    "galaxies": lambda: ("hubble_deep_field.jpg", _skimage("hubble_deep_field.jpg").read_bytes()),
    "moon": lambda: ("moon.png", _skimage("moon.png").read_bytes()),
    "chalk_math": lambda: ("text.png", _skimage("text.png").read_bytes()),
    "book_page": lambda: ("page.png", _skimage("page.png").read_bytes()),
    "motorcycle": lambda: ("motorcycle_left.png", _skimage("motorcycle_left.png").read_bytes()),
    "clock": lambda: ("clock_motion.png", _skimage("clock_motion.png").read_bytes()),
    "retina": lambda: ("retina.jpg", _skimage("retina.jpg").read_bytes()),
    "grass": lambda: ("grass.png", _skimage("grass.png").read_bytes()),
    # the Summer Palace's Tower of Buddhist Incense, Beijing (sklearn's china.jpg), with its place as EXIF GPS
    "pagoda": lambda: ("china.jpg", _jpeg(Image.open(_sklearn("china.jpg")), gps=(39.999, 116.272))),
    "flower": lambda: ("flower.jpg", _sklearn("flower.jpg").read_bytes()),
    "parking_sign": lambda: ("gravel_sign.jpg", _jpeg(_sign(_skimage("gravel.png"), "NOPARKINGANYTIME"))),
    "bakery_sign": lambda: ("brick_sign.jpg", _jpeg(_sign(_skimage("brick.png"), "FRESHBREADDAILY"))),
}

# (query, relevant photos, kind). Written from looking at the photos, not from what the analyser says.
QUERIES: list[tuple[str, set[str], str]] = [
    ("cat", {"cat"}, "thing"),
    ("tabby cat", {"cat"}, "thing"),
    ("kitten", {"cat"}, "meaning"),
    ("cup of coffee", {"coffee_sign", "coffee_madison"}, "thing"),
    ("espresso", {"coffee_sign", "coffee_madison"}, "thing"),
    ("espresso bar", {"coffee_sign"}, "ocr"),
    ("Pikolo", {"coffee_sign"}, "ocr"),
    ("latte price", {"coffee_sign"}, "ocr"),
    ("coffee in Madison", {"coffee_sign", "coffee_madison"}, "multi"),
    ("Madison", {"coffee_sign", "coffee_madison"}, "place"),
    ("motorcycle", {"motorcycle"}, "thing"),
    ("red motorbike", {"motorcycle"}, "meaning"),
    ("motorcycle in a garage", {"motorcycle"}, "multi"),
    ("flower", {"flower"}, "thing"),
    ("orange dahlia", {"flower"}, "meaning"),
    ("pagoda", {"pagoda"}, "thing"),
    ("temple by the lake", {"pagoda"}, "multi"),
    ("Beijing", {"pagoda"}, "place"),
    ("rocket", {"rocket"}, "thing"),
    ("rocket launch at night", {"rocket"}, "multi"),
    ("launch pad in Florida", {"rocket"}, "multi"),
    ("photos from 2015", {"rocket"}, "date"),
    ("February 2015", {"rocket"}, "date"),
    ("astronaut", {"astronaut"}, "thing"),
    ("woman in an orange space suit", {"astronaut"}, "meaning"),
    ("space shuttle", {"astronaut"}, "thing"),
    ("american flag", {"astronaut", "obama", "obama2"}, "thing"),
    ("Barack Obama", {"obama", "obama2", "obama3"}, "person"),
    ("Obama speaking at a podium", {"obama2"}, "multi"),
    ("Joe Biden", {"biden"}, "person"),
    ("Obama in 2012", {"obama"}, "multi"),
    ("photos from 2009", {"obama2"}, "date"),
    ("man in a suit", {"obama", "obama2", "obama3", "biden"}, "thing"),
    ("man with a camera on a tripod", {"cameraman"}, "multi"),
    ("photographer", {"cameraman"}, "meaning"),
    ("coins", {"coins"}, "thing"),
    ("old coins", {"coins"}, "thing"),
    ("galaxies", {"galaxies"}, "meaning"),
    ("stars in space", {"galaxies"}, "meaning"),
    ("moon", {"moon"}, "thing"),
    ("craters", {"moon"}, "meaning"),
    ("handwritten math", {"chalk_math"}, "meaning"),
    ("page of a book", {"book_page"}, "thing"),
    ("segmentation", {"book_page"}, "ocr"),
    ("markers of the coins", {"book_page"}, "ocr"),
    ("parking", {"parking_sign"}, "ocr"),
    ("no parking sign", {"parking_sign"}, "ocr"),
    ("bread", {"bakery_sign"}, "ocr"),
    ("fresh bread sign on a brick wall", {"bakery_sign"}, "multi"),
    ("clock", {"clock"}, "thing"),
    ("grass", {"grass"}, "thing"),
    ("eye retina", {"retina"}, "meaning"),
]


def metrics(ranked: list[str], relevant: set[str]) -> tuple[float, float, float]:
    top = ranked[:10]
    success = 1.0 if relevant & set(ranked[:3]) else 0.0
    dcg = sum(1 / math.log2(i + 2) for i, pid in enumerate(top) if pid in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    recall = len(relevant & set(top)) / len(relevant)
    return success, dcg / ideal, recall


def name_people(client: PhotoApiClient, ids: dict[str, str]) -> dict[str, str]:
    """Names the person whose faces are in the Obama photos "Barack Obama", and the one in biden.jpg who is not
    him "Joe Biden", as a user would after looking at the faces (a face seen once may not be a person yet)."""
    named: dict[str, str] = {}
    by_photo = {v: k for k, v in ids.items()}
    for person in client.people():
        photos = {by_photo.get(p["photo_id"]) for p in
                  client._call("GET", f"/people/{person['person_id']}/photos").json()["items"]}
        if len(photos & {"obama", "obama2", "obama3"}) >= 2 and "Barack Obama" not in named.values():
            named[person["person_id"]] = "Barack Obama"
        elif "biden" in photos and "Joe Biden" not in named.values():
            named[person["person_id"]] = "Joe Biden"
    for person_id, name in named.items():
        client.name_person(person_id, name)
    return named


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path, help="library folder to keep (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(args.keep or tmp))


def run(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    with LocalStack(data_dir, port=0) as stack:
        user, _ = stack.identity.add_user("bench", "a long bench password")
        token = stack.identity.issue_token(user)
        ids: dict[str, str] = {}
        with PhotoApiClient(stack.url, token) as client:
            client._call("PUT", "/settings/biometrics", json={"biometric_consent": True})
            for key, make in PHOTOS.items():
                filename, data = make()
                ids[key] = client.upload_bytes(data, filename, "image/png" if filename.endswith(".png") else "image/jpeg")
            statuses = {key: client.wait_until_processed(pid)["status"] for key, pid in ids.items()}
            skipped = {k: s for k, s in statuses.items() if s.lower() != "ready"}
            analyse_library(data_dir, workers=2, label_model=ROOT / LABEL_MODEL)
            named = name_people(client, ids)
            analyse_library(data_dir, workers=2, label_model=ROOT / LABEL_MODEL)  # reindexes the named people
            headers = {"Authorization": f"Bearer {token}"}
            by_id = {v: k for k, v in ids.items()}
            services = build_services(Settings(data_dir=data_dir))
            owner = user.sub
            index = services.search.index
            with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as http:
                rows = []
                for query, relevant, kind in QUERIES:
                    body = http.get("/search", params={"q": query, "limit": 20}).json()
                    ranked = [by_id.get(item["photo_id"], "?") for item in body["items"]]
                    plain = index.search(SearchQuery(owner=owner, text=query, limit=20), facets=False)
                    base = [by_id.get(h.photo_id, "?") for h in plain.hits]
                    rows.append((query, kind, relevant, ranked, base, body))
            captions = {key: (services.analysis.get(owner, pid).caption if services.analysis.get(owner, pid) else None)
                        for key, pid in ids.items()}
            calibrate(services, owner, ids)
    report(rows, skipped, named, captions)


def calibrate(services, owner: str, ids: dict[str, str]) -> None:
    """Cosine similarity of each meaning query to its relevant photos and to the others (describe() texts)."""
    search = services.search
    if search.embed is None:
        print("no embedder: meaning floor not calibrated")
        return
    keys, texts = [], []
    for key, pid in ids.items():
        photo = services.metadata.get_photo(owner, pid)
        document = search.document(photo) if photo else None
        if document is not None and (text := describe(document).strip()):
            keys.append(key)
            texts.append(text)
    vectors = np.asarray(search.embed(texts))
    relevant_sims, other_sims = [], []
    for query, relevant, kind in QUERIES:
        if kind != "meaning":
            continue
        q = np.asarray(search.embed([query]))[0]
        sims = vectors @ q
        for key, sim in zip(keys, sims):
            (relevant_sims if key in relevant else other_sims).append(float(sim))
    if relevant_sims and other_sims:
        pct = lambda values, q: float(np.percentile(values, q))  # noqa: E731
        print(f"meaning calibration: relevant cos min {min(relevant_sims):.3f} p10 {pct(relevant_sims, 10):.3f} "
              f"median {statistics.median(relevant_sims):.3f}; irrelevant median {statistics.median(other_sims):.3f} "
              f"p90 {pct(other_sims, 90):.3f} p99 {pct(other_sims, 99):.3f} max {max(other_sims):.3f}")
        best = max(
            (f1(relevant_sims, other_sims, t / 100), t / 100) for t in range(5, 60)
        )
        print(f"floor with the best F1 (relevant kept vs irrelevant let in): {best[1]:.2f} (F1 {best[0]:.2f}); "
              f"in force: search.fusion.MEANING_FLOOR = {MEANING_FLOOR}")


def f1(relevant: list[float], other: list[float], floor: float) -> float:
    kept = sum(1 for s in relevant if s >= floor)
    wrong = sum(1 for s in other if s >= floor)
    if not kept:
        return 0.0
    precision, recall = kept / (kept + wrong), kept / len(relevant)
    return 2 * precision * recall / (precision + recall)


def report(rows, skipped, named, captions) -> None:
    if skipped:
        print("not analysed (status):", skipped)
    print("people named:", sorted(named.values()))
    empty = [k for k, c in captions.items() if c is not None and not c.strip()]
    print(f"captions: {sum(1 for c in captions.values() if c)} of {len(captions)} photos; empty: {empty or 'none'}")
    print(f"\n{'query':38s} {'kind':8s} | {'s@3':>4s} {'nDCG':>5s} {'R@10':>5s} | {'base s@3':>8s} {'nDCG':>5s} "
          f"{'R@10':>5s} | top 3")
    totals, base_totals, worse = np.zeros(3), np.zeros(3), []
    for query, kind, relevant, ranked, base, body in rows:
        m, b = np.array(metrics(ranked, relevant)), np.array(metrics(base, relevant))
        totals += m
        base_totals += b
        flag = ""
        if (m < b - 1e-9).any():
            worse.append(query)
            flag = "  WORSE than baseline"
        elif m[0] < 1 or m[1] < 0.8:
            flag = "  miss"
        extra = f" relaxed={body.get('relaxed')}" if body.get("relaxed") else ""
        print(f"{query[:38]:38s} {kind:8s} | {m[0]:4.0f} {m[1]:5.2f} {m[2]:5.2f} | {b[0]:8.0f} {b[1]:5.2f} {b[2]:5.2f} "
              f"| {','.join(ranked[:3])}{flag}{extra}")
    n = len(rows)
    s, nd, r = totals / n
    bs, bnd, br = base_totals / n
    print(f"\noverall ({n} queries): success@3 {s:.3f}  nDCG@10 {nd:.3f}  recall@10 {r:.3f}")
    print(f"baseline (plain keyword): success@3 {bs:.3f}  nDCG@10 {bnd:.3f}  recall@10 {br:.3f}")
    print(("PASS" if s >= 0.9 else "MISS") + f": success@3 {s:.3f} (target >= 0.9)")
    print(("PASS" if nd >= 0.8 else "MISS") + f": nDCG@10 {nd:.3f} (target >= 0.8)")
    print(("PASS" if not worse else "MISS") + f": queries worse than the baseline: {worse or 'none'}")


if __name__ == "__main__":
    main()
