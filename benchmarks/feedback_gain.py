"""How much each correction teaches: N answers chosen by the review queue against N chosen at random.

Run: .venv/bin/python benchmarks/feedback_gain.py          (first run analyses ~300 photos: a few minutes on 2 cores;
                                                              the analyses are cached under build/bench/)

A simulated user with a hidden ground truth answers yes/no questions about one library:
- the library: the real photos of samples/ (and ../shared/photos when present, deduplicated by content), each
  augmented into `--copies` variants (crop, flip, small rotation, colour, blur, down-scaling, JPEG quality: faces
  shrink and blur, labels drift) and analysed by the local analyzer (the CPU label model, dlib faces, the text
  check) exactly as `photo-organizer analyze` would;
- the truth: tags per source photo (the analysis vocabulary the user agrees with, minus the tags they consider
  noise, plus custom tags: "white house", "space trip", "coffee break", "grandma's cat", "homework") and a face
  identity per source photo (Obama, Biden, Collins);
- the held-out set: ~25 % of the photos by a hash of the photo id, never asked about (future photos);
- the user first adds every custom tag to SEED_TAGS_PER_CUSTOM photos (the same seed in both strategies, not
  counted in N: a tag nobody ever used cannot be suggested, so the queue could never ask about it);
- then N answers (N = 0, 20, 50, 100, 200), in rounds of `--retrain-every`: chosen by the review queue
  (services.review.ReviewService.candidates: the largest expected gain first, i.e. the current models'
  uncertainty times how new the answer would be for its label or person) or uniformly
  at random from the same pool of open questions. After each round the product's own retraining runs in-process
  on all feedback so far (training_core.retrain_in_process): the feature snapshot and the feedback lines are
  written in the dataset layout, turned into labelled examples with their folds by learning.examples.build_examples
  (preprocess.py), trained on all of them by sagemaker/training_core.py (train_tagging_models,
  train_face_matchers), evaluated and gated by training_core.evaluate (the candidate cross-fitted over the
  feedback's folds, the approved model as it is, the promotion rule on the pooled evidence, as in the product),
  and re-applied (apply_models: the queue's new suggestions; the promoted matcher re-clusters the people and
  scores the face questions).

Prints, per strategy and N: held-out tag macro-F1 (the product's tags: analysis tags minus the suppressed ones
plus the suggestions) and face pair F1 (P(same) >= 0.5 over every pair of held-out faces), measured against the
hidden truth; then the checks: monotone gain with N, the queue's N needed to reach the random strategy's F1 at
N=100 (target <= 60), and no regression on the hidden truth after any promotion. Random is averaged over
`--random-seeds` runs. No timings are asserted anywhere.

The analyses include the label model's image embedding when build/models/efficientnet_lite0.onnx has its
`embedding` output (EXPORT_FORMAT 2); the cache is keyed on the model file, so a re-exported model is re-analysed.

Limits of this library: three face identities only (the photos with known people that ship in packages; no
installed package holds more real face photos: scikit-learn's LFW and Olivetti sets are downloads, skimage's
lfw_subset is 25x25 pixels, below the face detector's size), far apart in descriptor space, so the fixed threshold
already separates almost every held-out pair. Its errors on the hidden truth (measured on the default library:
15 false "different" of 394 same-person pairs, 3 false "same") come from two degraded Obama copies at similarity
0.68-0.80 to the other Obamas and one degraded Biden copy at 0.82-0.94 to Obamas. The review queue's face answers
now include "no" (it also asks about the other person a face most resembles), so candidate matchers are trained;
but a matcher that lowers the threshold for the low-quality same-person pairs also takes the degraded Biden
pairs, and on the gate's held-out pairs no candidate beat the threshold (equal on 6 and 15 pairs, then 0.61-0.80
against 0.88-0.94 on 21-45 pairs): all refused, so face pair F1 stays where it starts. (Balanced class weights in the pair classifier moved
one such candidate from 0.74 to 0.82 against the threshold's 0.875 on 21 pairs: still refused; not adopted.)

The gate (learning.promotion) wants the 5 % paired-bootstrap lower bound of the gain above zero and 10 of each
answer kind. Judged on a held-out quarter of the feedback (<= 53 photos, <= 40 labelled pairs by N=200) it promoted
nothing: the tagging candidates' point gains there were <= +0.02 with lower bounds near -0.10, and no face set
reached 10 same-person pairs, so both curves stayed flat (and the margin-only rule before it promoted noise: +0.141
tag macro-F1 on the hidden truth, then -0.022, and a face matcher 0.977 -> 0.345). Now the candidate is judged
cross-fitted over 5 folds of ALL the labelled feedback (learning.cross_fitting), the approved model in sample (which
flatters it: conservative), so the bootstrap resamples every reviewed photo instead of a quarter of them.

Measured with it (272 train / 88 test photos, 630 test face pairs): every run promoted its first tagging candidate
at N=10 (28 judged examples, lower bound +0.21; hidden truth 0.367 -> 0.497 queue, 0.491 / 0.505 / 0.497 random)
and nothing after. (Judging the approved model out of fold too was tried and reverted: the one successor it let
through, N=150, lower bound +0.005, fell on the hidden truth, 0.497 -> 0.486.) Many later queue answers reject
analysis tags the user never wants (clothing, mask, tableware, sport, formal wear, cup: 31 of the first 100
answers), yet 14 such tags stayed at hidden-truth F1 0. Why, on the queue's feedback at N=100: a review answer is
one question about one tag, but every other analysis tag of a reviewed photo counted as a weak "kept" at
WEAK_WEIGHT. "clothing", rejected on the 7 photos asked about and never confirmed, had 32 such weak positives
and kept P(keep) 0.68 (median) on the held-out photos; "formal wear" (4 noes) 0.98, "tableware" (5) 0.88; "mask"
and "sport" (6 and 5 noes) got no model at all (fewer than 2 positives). The gate counted those weak positives
too, so a model that dropped such a tag scored an F1 of 0 on it against the analysis's small positive one.

Now (learning.examples.weak_trust, learning.evidence.judged_trust): a weak positive of a tag the owner rejected
where analysis put it weighs WEAK_WEIGHT x keep_rate in training (the Beta(0.5, 0) posterior mean of the owner's
confirmed / rejected answers there: k noes and no yes leave 1 / (2k + 1) of the weight), a rejected tag with too
few kept photos to model gets its keep rate on every photo, and the gate counts such weak positives at the share
kept where asked (0 for a tag never kept). Replayed on the same N=100 feedback: clothing P(keep) median 0.68 ->
0.13 on the held-out photos (suppressed on 24 of 42, was 1), mask and sport suppressed everywhere, accessories
0.42 -> 0.89 and tie 0.62 -> 0.94 (dropped where the owner rejected them, kept where they fit), mammal 0.90 ->
1.00; "formal wear" (4 noes, median 0.96) and "tableware" (5 noes on photos unlike the ones it stays on, 0.87)
not yet; the candidate's hidden truth 0.520 (before) -> 0.573, and the gate promotes it (lower bound +0.026). With
that the queue reached random@100 (0.502) at N=90 (0.499 -> 0.547; target <= 60: missed), no regression.
Tried then and not kept: a whole pseudo-confirmation as the prior (keep_rate 1 / (k + 1): N=100 candidate 0.548 vs
0.573); the keep rate alone, on every photo, for every tag never confirmed (0.521 at N=100: it dropped accessories
and mammal where they fit too); the same trust for the weak negatives of the owner's own tags in training (0.547 vs
0.552 at N=80); the gate with the training's prior (the same decisions, and it still prefers keeping a tag the
owner refused everywhere: tests/unit/learning/test_learning_weak_labels.py).

What held the queue back until N=90: the approved N=10 model was judged in sample, and it was fitted on the
seeded photos of the custom tags. At N=60 a successor was +0.056 on the hidden truth (0.555 vs 0.499) but scored
0.357 vs 0.387 in the gate: "homework" 0.86 -> 0.33 and "space trip" 0.73 -> 0.26 out of fold against the approved
model in sample (four positives: each fold model keeps three and misses the fourth). Four changes, each for a
failure measured here:
- training_core.evaluate: on the labels of a tag with fewer than MIN_CROSS_FIT_POSITIVES (10) positive labels that
  the approved model was fitted on as they are now, the candidate is judged as it is too (both in sample); to
  know what the approved model saw, model.json records feedback_through and preprocess rebuilds its examples
  (labelled/tagging_as_approved.jsonl). Everywhere else the approved model stays in sample (conservative).
- learning.evidence.judged_negative_trust: the gate counts no weak "no" of a tag the owner adds themselves (a
  reviewed photo without it is no answer about it: "white house" fits 47 of the 88 test photos; with those "no"s
  the gate scored a candidate 0.52 -> 0.64 on it and promoted it, and on the hidden truth it fell 0.84 -> 0.45).
- training_core._platt: an added tag is calibrated on the owner's answers about it, not on its weak "no"s (once
  "white house" had 6 additions it was Platt-calibrated on them against 75 weak "no"s, its probabilities sank to
  the labelled share, P 0.57 -> 0.13 on its photos, and it was suggested nowhere: hidden F1 0.77 -> 0).
- learning.promotion.mid_p_not_better: a tie in a resample counts half. Two models that differ on a few photos tie
  in every resample that misses them; the N=60 successor above was never worse in any of 1000 resamples (0.1 %)
  but tied in 8.5 %, so its 5 % lower bound was exactly 0 and it was refused. Mid-p 0.001 + 0.085 / 2 < 0.05.

Full run (554 s wall, load ~2 on 2 shared cores; 272 train / 88 test photos, 630 test face pairs):

    strategy    N  tag macro-F1  face pair F1
    queue       0     0.367        0.977
    queue      20     0.499        0.977
    queue      50     0.499        0.977
    queue     100     0.555        0.977
    queue     200     0.555        0.977
    random      0     0.367        0.977
    random     20     0.502        0.977      (3 seeds: 0.503 / 0.506 / 0.497, each promoted once, at N=10)
    random     50     0.502        0.977
    random    100     0.502        0.977
    random    200     0.502        0.977

Checks: monotone gain with N: yes for both; the queue reaches random@100 (0.502) at N=60 (target <= 60: met, at
the limit); regressions after a promotion: 0 of 5 (queue 0.367 -> 0.499 at N=10, 0.499 -> 0.555 at N=60). Per
tag, queue N=0 -> 200: accessories 0.42 -> 0.84, tie 0.62 -> 0.94, mammal and pet 0.90 -> 1.00, mask and sport
suppressed everywhere (out of the average), the custom tags 0 -> 0.74..1.00. After N=60 the queue's successors
score 0.43..0.55 against the approved 0.49..0.54 in the gate: lower, or higher within the noise (N=80: 0.548 vs
0.516, lower bound -0.008): refused. The random runs promote nothing after N=10 (their successors within the
noise of the approved model). Faces: no candidate passes (at or below the approved threshold on the queue's 3..20
judged pairs: 0.25 vs 0.92 at N=200); they stay 0.977.
Another library, the same photos in fewer variants (--copies 16 --hard-copies 8: 182 train / 58 test photos),
before (the approved model in sample everywhere, ties as losses) and after these changes:

    strategy    N   before  after
    queue      20   0.496   0.496
    queue     100   0.496   0.555      (after: promoted at N=60, lower bound +0.045; before: at N=200, 0.535)
    random     20   0.487   0.487      (3 seeds)
    random    100   0.487   0.488
    random    200   0.487   0.486

There the queue's first model (N=10) already reaches random@100, before and after. After, the random runs promote
three successors, at N=30 (+0.006), N=130 (-0.001) and N=170 (-0.005): two regressions, within the noise below;
before, none (0 of 5).

Tried this time and not kept:
- the approved model judged out of fold everywhere (its recipe refitted on its own feedback, without each fold):
  random seed 0 promoted at N=80 and fell 0.503 -> 0.458 (the calibration collapse above); with the calibration
  fixed, 0.503 -> 0.491 -> 0.472 (accessories 0.94 -> 0.47 and the custom tags, while the gate saw gains);
- the candidate in sample on every label the approved model saw, not only few-positive ones: the queue promoted
  at N=50, 70, 100, 110, 140, 150 and four of them fell (0.517 -> 0.511 -> 0.503 -> 0.501; 0.527 at N=200);
- few-positive labels in sample without the weak-"no" rule: the queue promoted at N=50 (0.517) and at N=110
  (0.510: the "white house" case above);
- with the weak-"no" rule but ties counted as losses: the queue reached random@100 at N=80 (0.552), no regression.
The hidden truth itself is noisy: its 88 test photos are copies of 12 source photos; a cluster bootstrap (by
source photo) of one promotion's change gave a standard deviation of 0.019 (0.010 by photo), so changes below
~0.02 are within it, and "no regression" is checked to the third decimal regardless.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import io
import json
import random
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.analysis.models import (  # noqa: E402
    AnalysisResult,
    AnalysisSource,
    BoundingBox,
    Label,
    LabelSource,
)
from photo_organizer.analysis.planning import PhotoRecord  # noqa: E402
from photo_organizer.analysis.store import PhotoAnalysis  # noqa: E402
from photo_organizer.feedback.dataset import lines_by_partition  # noqa: E402
from photo_organizer.feedback.models import (  # noqa: E402
    FeedbackRecord,
    FeedbackType,
    TagOverlay,
    TagSuggestion,
    effective_tags,
    new_feedback_id,
    overlay_of,
)
from photo_organizer.learning.datasets import (  # noqa: E402
    FACES_FILE,
    PHOTOS_FILE,
    FaceFeatures,
    PhotoFeatures,
    encode_vector,
    write_lines,
)
from photo_organizer.learning.faces import FaceMatcher, matchers_from_document  # noqa: E402
from photo_organizer.learning.metrics import macro_f1, pair_f1  # noqa: E402
from photo_organizer.learning.tagging import TaggingModel, analysis_tags, models_from_document  # noqa: E402
from photo_organizer.models import PhotoStatus  # noqa: E402
from photo_organizer.people import (  # noqa: E402
    DEFAULT_THRESHOLD,
    CannotLink,
    Person,
    PinnedFace,
    cluster_people,
    nearest_edges,
    similarities_from_distances,
)
from photo_organizer.people.store import StoredFace  # noqa: E402
from photo_organizer.services.review import ReviewItem, ReviewKind, ReviewService  # noqa: E402

OWNER = "bench-user"
LABEL_MODEL = ROOT / "build" / "models" / "efficientnet_lite0.onnx"
CACHE = ROOT / "build" / "bench" / "feedback_gain"
AUGMENT_VERSION = 1
BUDGETS = (0, 20, 50, 100, 200)
SEED_TAGS_PER_CUSTOM = 4
HELD_OUT_SHARE = 0.25
PRIOR_WEIGHT = 0.5
C_TAGS = 4.0
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)

_PEOPLE_NOISE = frozenset({"clothing", "formal wear"})  # analysis tags this user rejects on sight
_SUITED = {"person", "suit", "white house"}
TRUTH: dict[str, tuple[frozenset[str], str | None]] = {
    "astronaut": (frozenset({"person", "space trip"}), "collins"),
    "biden": (frozenset(_SUITED), "biden"),
    "obama": (frozenset(_SUITED), "obama"),
    "obama2": (frozenset(_SUITED | {"tie", "accessories"}), "obama"),
    "obama3": (frozenset(_SUITED), "obama"),
    "obama_partial_face": (frozenset(_SUITED), "obama"),
    "chelsea": (frozenset({"animal", "mammal", "pet", "cat", "grandma's cat"}), None),
    "coffee": (frozenset({"food and drink", "beverage", "coffee", "coffee break"}), None),
    "coffee_exif_gps": (frozenset({"food and drink", "beverage", "coffee", "coffee break"}), None),
    "coffee_with_text": (frozenset({"food and drink", "beverage", "coffee", "coffee break", "text"}), None),
    "rocket": (frozenset({"transportation", "vehicle", "rocket", "space trip"}), None),
    "text": (frozenset({"text", "homework"}), None),
}
CUSTOM_TAGS = ("white house", "space trip", "coffee break", "grandma's cat", "homework")


# ---- the library: real photos, augmented, analysed by the local analyzer -------------------------------------------


@dataclass
class Example:
    photo_id: str
    base: str
    analysis: PhotoAnalysis
    truth: frozenset[str]
    faces: list[StoredFace]
    identity: str | None  # of every face in the photo (one face per source photo here)
    embedding: str | None = None  # the label model's image embedding (encode_vector float16), when it has one


def source_photos(limit: int | None = None) -> list[Path]:
    """samples/ and ../shared/photos, one file per content, with a ground truth; HEIC copies are left out (the
    same shot as obama3.jpg)."""
    seen: set[str] = set()
    out: list[Path] = []
    for folder in (ROOT / "samples", ROOT.parent / "shared" / "photos"):
        for path in sorted(folder.glob("*")) if folder.is_dir() else ():
            if path.suffix.lower() not in (".jpg", ".png") or path.stem not in TRUTH:
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                out.append(path)
    return out[:limit] if limit else out


def augment(image: Image.Image, rng: random.Random) -> bytes:
    """One variant: what a phone library holds of a scene (other crops, orientations, light, focus, sizes)."""
    image = image.convert("RGB")
    w, h = image.size
    scale = rng.uniform(0.72, 1.0)
    cw, ch = int(w * scale), int(h * scale)
    left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
    image = image.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = image.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BILINEAR, expand=False)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.3, 1.5))
    if rng.random() < 0.6:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3.5)))
    longest = rng.choice([240, 320, 420, 560, 800, 1200])
    image.thumbnail((longest, longest))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rng.randint(25, 92))
    return buffer.getvalue()


def degrade(image: Image.Image, rng: random.Random) -> bytes:
    """A poor copy (small, blurred, dark or washed out, heavily compressed): faces the detector still finds land
    below the fixed threshold to their own person, the case a learned matcher exists for."""
    image = image.convert("RGB")
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image.thumbnail((rng.choice([400, 500, 600]),) * 2)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 3.0)))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.4, 1.6))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rng.randint(10, 30))
    return buffer.getvalue()


class _Analyzer:
    """The local analyzer and the image embedder over ONE label-model session (one pass per photo), as
    bootstrap.local_analysis wires them."""

    def __init__(self) -> None:
        from photo_organizer.adapters.image_embedding import LabelModelSession, OnnxImageEmbedder
        from photo_organizer.adapters.local.analyzer import LocalAnalyzer

        session = LabelModelSession(LABEL_MODEL)
        self._analyzer = LocalAnalyzer(label_model=LABEL_MODEL, ocr=True, moderation=False, label_session=session)
        self._embedder = OnnxImageEmbedder(session) if "embedding" in session.output_names() else None

    def analyze(self, jpeg: bytes, plan):
        return self._analyzer.analyze(jpeg, plan)

    def embed(self, jpeg: bytes) -> np.ndarray | None:
        return self._embedder.embed(jpeg) if self._embedder is not None else None


def _analyzer():
    return _Analyzer()


@functools.lru_cache(maxsize=1)
def _model_digest() -> str:
    """The label model file's identity: the cache of analyses (labels AND embeddings) is keyed on it, so a
    re-exported model (e.g. one that gained the `embedding` output) is never served stale results."""
    if not LABEL_MODEL.is_file():
        return "none"
    stat = LABEL_MODEL.stat()
    return hashlib.sha256(f"{stat.st_size}/{LABEL_MODEL.read_bytes()[-65536:].hex()}".encode()).hexdigest()[:16]


def analyse_copy(path: Path, copy: int, analyzer_factory: Callable[[], object], cache: Path, *,
                 hard: bool = False) -> dict:
    """The analysis of one augmented (or, hard, degraded) copy, from the cache when this exact variant was
    analysed before."""
    from photo_organizer.analysis.models import AnalysisPlan, ApiCall

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    kind = "hard/" if hard else ""
    key = hashlib.sha256(f"{kind}{AUGMENT_VERSION}/{_model_digest()}/{digest}/{copy}".encode()).hexdigest()[:24]
    cached = cache / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    rng = random.Random(f"{kind}{digest}/{copy}")
    with Image.open(path) as image:
        jpeg = degrade(image, rng) if hard else augment(image, rng) if copy else _plain(image)
    photo_id = f"{path.stem.replace('_', '-')}-{'h' if hard else ''}{copy:03d}"
    plan = AnalysisPlan(owner=OWNER, photo_id=photo_id, analysis_version=1,
                        calls=frozenset({ApiCall.DETECT_LABELS, ApiCall.INDEX_FACES}))
    analyzer = analyzer_factory()
    result = analyzer.analyze(jpeg, plan)
    embed = getattr(analyzer, "embed", None)
    embedding = embed(jpeg) if embed is not None else None
    body = {
        "photo_id": photo_id,
        "labels": [[lb.name, lb.confidence, list(lb.parents), lb.source.value] for lb in result.labels],
        "faces": [
            {"face_id": f.face_handle, "box": f.box.model_dump(), "quality": (f.quality.sharpness or 50.0) / 100.0,
             "descriptor": base64.b64encode(f.descriptor).decode()}
            for f in result.faces if f.face_handle and f.descriptor
        ],
        "embedding": encode_vector(embedding, "float16") if embedding is not None else None,
    }
    cache.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(body))
    return body


def _plain(image: Image.Image) -> bytes:
    image = image.convert("RGB")
    image.thumbnail((1200, 1200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def build_library(paths: Sequence[Path], copies: int, *, hard_copies: int = 0, cache: Path = CACHE,
                  analyzer_factory: Callable[[], object] | None = None, progress: bool = True) -> list[Example]:
    """`copies` variants of every source photo, plus `hard_copies` degraded ones of each photo with a person."""
    shared: dict[str, object] = {}

    def factory():
        if "analyzer" not in shared:
            shared["analyzer"] = (analyzer_factory or _analyzer)()
        return shared["analyzer"]

    examples = []
    plan = [(path, copy, False) for path in paths for copy in range(copies)]
    plan += [(path, copy, True) for path in paths if TRUTH[path.stem][1] for copy in range(hard_copies)]
    for done, (path, copy, hard) in enumerate(plan, start=1):
        truth, identity = TRUTH[path.stem]
        body = analyse_copy(path, copy, factory, cache, hard=hard)
        labels = tuple(Label(name=n, confidence=c, parents=tuple(p), source=LabelSource(s))
                       for n, c, p, s in body["labels"])
        result = AnalysisResult(photo_id=body["photo_id"], analysis_version=1, labels=labels, analysed_at=NOW,
                                source=AnalysisSource.LOCAL)
        faces = [StoredFace(face_id=f["face_id"], owner=OWNER, photo_id=body["photo_id"],
                            box=BoundingBox(**f["box"]), quality=min(1.0, max(0.0, f["quality"])),
                            created_at=NOW, descriptor=base64.b64decode(f["descriptor"]))
                 for f in body["faces"]]
        examples.append(Example(body["photo_id"], path.stem, PhotoAnalysis(owner=OWNER, result=result), truth,
                                faces, identity, body.get("embedding")))
        if progress and sys.stderr.isatty():
            print(f"\ranalysed {done}/{len(plan)}", end="", file=sys.stderr)
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)
    return examples


def held_out(photo_id: str, share: float = HELD_OUT_SHARE) -> bool:
    return zlib.crc32(f"test/{photo_id}".encode()) % 1000 < share * 1000


# ---- the product's stores, in memory (the review queue reads them through its ports) -------------------------------


class MemoryAnalysis:
    def __init__(self, examples: Iterable[Example]) -> None:
        self.rows = {e.photo_id: e.analysis for e in examples}

    def analysed(self, owner, *, min_version):
        return [PhotoRecord(owner=owner, photo_id=p, status=PhotoStatus.READY, analysis_version=1)
                for p in sorted(self.rows)]

    def get(self, owner, photo_id):
        return self.rows.get(photo_id)


class MemoryPeople:
    def __init__(self, faces: Iterable[StoredFace]) -> None:
        self._faces = sorted(faces, key=lambda f: f.face_id)
        self._people: list[Person] = []
        self._constraints: list = []

    def faces(self, owner):
        return list(self._faces)

    def people(self, owner):
        return list(self._people)

    def constraints(self, owner):
        return list(self._constraints)

    def replace_people(self, owner, people):
        self._people = list(people)

    def add_constraint(self, owner, constraint):
        self._constraints.append(constraint)
        return str(len(self._constraints))


class MemoryFeedback:
    def __init__(self) -> None:
        self.records: list[FeedbackRecord] = []

    def overlays(self, owner):
        by_photo: dict[str, list[FeedbackRecord]] = {}
        for record in self.records:
            if record.photo_id:
                by_photo.setdefault(record.photo_id, []).append(record)
        return {p: overlay_of(rs) for p, rs in by_photo.items()}

    def events(self, owner, *, since=None):
        return list(self.records)


class MemorySuggestions:
    def __init__(self) -> None:
        self.by_photo: dict[str, list[TagSuggestion]] = {}

    def all_suggestions(self, owner):
        return self.by_photo


# ---- the learning: part "learning"'s training functions, as the pipeline and `photo-organizer retrain` run them ------


def training_core():
    """sagemaker/training_core.py (a script folder, not a package: put on the path as its scripts do)."""
    folder = str(ROOT / "sagemaker")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import training_core as core

    return core


def photo_features(photo: Example, person_of: Mapping[str, str], overlay: TagOverlay) -> PhotoFeatures:
    labels: dict[str, float] = {}
    for label in photo.analysis.result.labels:
        for name in (label.name, *label.parents):
            labels[name.casefold()] = max(labels.get(name.casefold(), 0.0), label.confidence)
    pairs = [(label.name, label.parents) for label in photo.analysis.result.labels]
    return PhotoFeatures(
        owner=OWNER,
        photo_id=photo.photo_id,
        analysed_at=NOW.isoformat(),
        labels=labels,
        people=sorted({person_of[f.face_id] for f in photo.faces if f.face_id in person_of}),
        tags=effective_tags(pairs, overlay),
        embedding=photo.embedding,
    )


def face_features(face: StoredFace, person_of: Mapping[str, str]) -> FaceFeatures:
    return FaceFeatures(owner=OWNER, face_id=face.face_id, photo_id=face.photo_id, person_id=person_of.get(face.face_id),
                        quality=face.quality, box_area=face.box.width * face.box.height,
                        descriptor=encode_vector(face.vector(), "float32"))


def write_dataset(root: Path, photos: Iterable[PhotoFeatures], faces: Iterable[FaceFeatures],
                  records: Sequence[FeedbackRecord]) -> None:
    """The layout the export writes and preprocess.py reads: features/ snapshot + feedback/date=.../*.jsonl."""
    write_lines(root / PHOTOS_FILE, photos)
    write_lines(root / FACES_FILE, faces)
    for prefix, text in lines_by_partition(records).items():
        folder = root / prefix
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "events.jsonl").write_text(text, encoding="utf-8")


def pair_similarity(a: StoredFace, b: StoredFace, matcher: FaceMatcher | None = None) -> float:
    va, vb = a.vector(), b.vector()
    if matcher is not None:
        return matcher.similarity(va, vb)
    return float(similarities_from_distances(np.array([np.linalg.norm(va - vb)]))[0])


# ---- the simulation -------------------------------------------------------------------------------------------------


@dataclass
class Scores:
    tags: float
    faces: float
    per_tag: dict[str, float] = field(default_factory=dict, repr=False)


@dataclass
class Run:
    strategy: str
    curve: dict[int, Scores] = field(default_factory=dict)  # answers given -> hidden-truth scores of the approved
    promotions: list[tuple[int, str, float, float]] = field(default_factory=list)  # (N, kind, before, after)
    refusals: int = 0
    decisions: list[str] = field(default_factory=list)  # "N kind: candidate/approved (examples)"


@dataclass
class Approved:
    tagging: dict | None = None  # model.json documents, None = untrained
    faces: dict | None = None

    def tagging_model(self) -> TaggingModel | None:
        return models_from_document(self.tagging).get(OWNER)

    def matcher(self) -> FaceMatcher | None:
        return matchers_from_document(self.faces).get(OWNER)


class Simulation:
    def __init__(self, examples: Sequence[Example], *, retrain_every: int, margin: float, min_examples: int,
                 work: Path, tagging_hp: Mapping[str, object] | None = None) -> None:
        self.photos = {e.photo_id: e for e in examples}
        self.train = {p: e for p, e in self.photos.items() if not held_out(p)}
        self.test = [e for p, e in sorted(self.photos.items()) if held_out(p)]
        self.faces = {f.face_id: f for e in examples for f in e.faces}
        self.identity = {f.face_id: e.identity for e in examples for f in e.faces}
        test_faces = [f for e in self.test for f in e.faces]
        self.test_pairs = [(a, b) for i, a in enumerate(test_faces) for b in test_faces[i + 1:]
                           if a.photo_id != b.photo_id]
        self.test_pair_truth = [self.identity[a.face_id] == self.identity[b.face_id] for a, b in self.test_pairs]
        self.retrain_every, self.margin, self.min_examples = retrain_every, margin, min_examples
        self.work = work
        self.core = training_core()
        self.tagging_hp = dict(tagging_hp or {})  # the pipeline's `--name value` hyperparameters; defaults when empty

    def run(self, strategy: str, budget: int, rng: random.Random | None = None) -> Run:
        feedback, suggestions = MemoryFeedback(), MemorySuggestions()
        people = MemoryPeople(self.faces.values())
        approved = Approved()
        self._recluster(people, None)
        review = ReviewService(MemoryAnalysis(self.train.values()), people, feedback, suggestions=suggestions,
                               face_matcher=lambda owner: approved.matcher())
        self._seed(feedback)
        run = Run(strategy)
        run.curve[0] = self._score(approved, people)
        given = 0
        while given < budget:
            pool = review.candidates(OWNER)
            if not pool:
                break
            take = min(self.retrain_every, budget - given)
            if strategy == "queue":
                batch = pool[:take]
            else:
                # Drawn from the pool in a canonical order, so the random baseline does not move when the queue's
                # ranking changes the order in which candidates() lists the same questions.
                canonical = sorted(pool, key=lambda i: (i.kind.value, i.photo_id, i.tag or "", i.face_id or "", i.person_id or ""))
                batch = (rng or random.Random(0)).sample(canonical, min(take, len(canonical)))
            for item in batch:
                self._answer(item, feedback, people)
            given += len(batch)
            suggestions.by_photo = self._retrain(feedback, people, approved, run, given)
            self._recluster(people, approved.matcher())
            run.curve[given] = self._score(approved, people)
            # progress on stderr as it goes: a run cut short still shows its curve and the gate's decisions
            print(f"{strategy} N={given}: tags {run.curve[given].tags:.3f} faces {run.curve[given].faces:.3f}; "
                  f"gate {'; '.join(run.decisions[-2:])}", file=sys.stderr, flush=True)
        return run

    # -- the user ------------------------------------------------------------------------------------------------

    def _seed(self, feedback: MemoryFeedback) -> None:
        """The user's first own tags: each on a few photos, of different scenes where the tag has several."""
        for tag in CUSTOM_TAGS:
            by_base: dict[str, list[str]] = {}
            for photo_id, example in sorted(self.train.items()):
                if tag in example.truth:
                    by_base.setdefault(example.base, []).append(photo_id)
            rounds = zip(*(ids + [None] * (len(self.train) - len(ids)) for ids in by_base.values()))
            chosen = [p for batch in rounds for p in batch if p is not None][:SEED_TAGS_PER_CUSTOM]
            for photo_id in chosen:
                self._record(feedback, FeedbackType.TAG_ADDED, photo_id=photo_id, tag=tag)

    def _answer(self, item: ReviewItem, feedback: MemoryFeedback, people: MemoryPeople) -> None:
        if item.kind is ReviewKind.TAG:
            yes = item.tag in self.photos[item.photo_id].truth
            body = item.answers.yes if yes else item.answers.no
            self._record(feedback, body.type, photo_id=item.photo_id, tag=item.tag)
            return
        person = next(p for p in people.people(OWNER) if p.person_id == item.person_id)
        truth = self._person_identity(person)
        yes = truth is not None and self.identity[item.face_id] == truth
        body = item.answers.yes if yes else item.answers.no
        self._record(feedback, body.type, face_id=item.face_id, person_id=item.person_id, photo_id=item.photo_id)
        constraint = (PinnedFace if yes else CannotLink)(face_id=item.face_id, person_id=item.person_id,
                                                          created_at=NOW)
        people.add_constraint(OWNER, constraint)
        if not yes:  # "not this person" takes the face out at once (PeopleService.not_this_person)
            people.replace_people(OWNER, [
                p.model_copy(update={"face_ids": p.face_ids - {item.face_id}, "cover_face_id": None})
                if p.person_id == item.person_id else p for p in people.people(OWNER)])

    def _person_identity(self, person: Person) -> str | None:
        """Who the user sees in a group: the identity most of its faces have."""
        counts: dict[str, int] = {}
        for face_id in person.face_ids:
            who = self.identity.get(face_id)
            if who:
                counts[who] = counts.get(who, 0) + 1
        return max(sorted(counts), key=lambda k: counts[k]) if counts else None

    @staticmethod
    def _record(feedback: MemoryFeedback, kind: FeedbackType, **fields) -> None:
        at = NOW + timedelta(seconds=len(feedback.records))
        feedback.records.append(FeedbackRecord(feedback_id=new_feedback_id(), owner=OWNER, type=kind, created_at=at,
                                               **fields))

    # -- the product: export, preprocess, train, evaluate, gate, re-apply ------------------------------------------

    def _person_of(self, people: MemoryPeople) -> dict[str, str]:
        return {f: p.person_id for p in people.people(OWNER) for f in p.face_ids}

    def _snapshot(self, people: MemoryPeople, feedback: MemoryFeedback) -> tuple[list[PhotoFeatures], list]:
        person_of = self._person_of(people)
        overlays = feedback.overlays(OWNER)
        photos = [photo_features(e, person_of, overlays.get(p, TagOverlay())) for p, e in sorted(self.photos.items())]
        faces = [face_features(f, person_of) for _, f in sorted(self.faces.items())]
        return photos, faces

    def _retrain(self, feedback: MemoryFeedback, people: MemoryPeople, approved: Approved, run: Run,
                 given: int) -> dict[str, list[TagSuggestion]]:
        core = self.core
        work = Path(tempfile.mkdtemp(dir=self.work))
        try:
            photos, faces = self._snapshot(people, feedback)
            write_dataset(work / "dataset", photos, faces, feedback.records)
            result = core.retrain_in_process(work / "dataset", work / "examples", approved_tagging=approved.tagging,
                                             approved_faces=approved.faces, tagging_hyperparameters=self.tagging_hp,
                                             margin=self.margin, min_examples=self.min_examples)
            candidate = Approved(result["tagging"], result["faces"])
            evaluation = result["evaluation"]
            for kind, metric, count in (("tagging", "macro_f1", "examples"), ("faces", "pair_f1", "pairs")):
                section = evaluation[kind]
                bound = section["decision"].get("gain_lower_bound")
                run.decisions.append(f"{given} {kind[0]}: {section['candidate'][metric]:.3f}/"
                                     f"{section['approved'][metric]:.3f} ({section[count]}"
                                     f"{'' if bound is None else f', lb {bound:+.3f}'})"
                                     f"{' promoted' if section['promote'] else ''}")
            for kind in ("tagging", "faces"):
                if not evaluation[kind]["promote"]:
                    run.refusals += 1
                    continue
                before = self._score(approved, people)
                setattr(approved, kind, getattr(candidate, kind))
                after = self._score(approved, people)
                attr = "tags" if kind == "tagging" else "faces"
                run.promotions.append((given, kind, getattr(before, attr), getattr(after, attr)))
            rows, _ = core.apply_models(work / "dataset", approved.tagging, approved.faces)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return {row["photo_id"]: [TagSuggestion(**s) for s in row["suggestions"]]
                for row in rows if row["photo_id"] in self.train}

    def _recluster(self, people: MemoryPeople, matcher: FaceMatcher | None) -> None:
        """PeopleService.recluster's rule: the promoted matcher's projection and threshold, else the default."""
        faces = sorted(self.faces.values(), key=lambda f: f.face_id)
        if not faces:
            return
        threshold = matcher.threshold if matcher is not None else DEFAULT_THRESHOLD
        vectors = np.stack([f.vector() for f in faces])
        if matcher is not None:
            vectors = matcher.project(vectors)
        edges = nearest_edges([f.face_id for f in faces], vectors, k=None, threshold=threshold)
        result = cluster_people(OWNER, [f.ref() for f in faces], edges, people.people(OWNER),
                                people.constraints(OWNER), threshold=threshold, min_cluster_size=2,
                                neighbour_cap=None)
        people.replace_people(OWNER, result.people)

    def _score(self, approved: Approved, people: MemoryPeople) -> Scores:
        """The approved models against the hidden truth of the held-out photos, under the product's rules."""
        person_of = self._person_of(people)
        test_photos = [photo_features(e, person_of, TagOverlay()) for e in self.test]
        model = approved.tagging_model()
        predicted = (model.predicted_tags_many(test_photos) if model is not None
                     else [analysis_tags(p) for p in test_photos])
        tag_metrics = macro_f1([set(e.truth) for e in self.test], predicted)
        matcher = approved.matcher()
        same = []
        for a, b in self.test_pairs:
            if matcher is None:
                same.append(pair_similarity(a, b) >= DEFAULT_THRESHOLD)
            else:
                s = pair_similarity(a, b, matcher)
                same.append(matcher.probability(s, a.quality, b.quality, area_a=a.box.width * a.box.height,
                                                area_b=b.box.width * b.box.height) >= 0.5)
        faces = pair_f1(self.test_pair_truth, same)["pair_f1"] if self.test_pairs else 0.0
        return Scores(tag_metrics["macro_f1"], faces, tag_metrics["per_tag"])


# ---- the report -------------------------------------------------------------------------------------------------------


@dataclass
class Report:
    budgets: tuple[int, ...]
    rows: list[dict]  # {"strategy", "n", "tag_macro_f1", "face_pair_f1"}
    checks: dict[str, object]


def first_reaching(curve: Mapping[int, Scores], target: float, metric: str) -> int | None:
    for n in sorted(curve):
        if getattr(curve[n], metric) >= target - 1e-9:
            return n
    return None


def benchmark(examples: Sequence[Example], *, budgets: Sequence[int] = BUDGETS, retrain_every: int = 10,
              random_seeds: int = 3, margin: float = 0.01, min_examples: int = 10,
              tagging_hp: Mapping[str, object] | None = None) -> Report:
    with tempfile.TemporaryDirectory(prefix="feedback-gain-") as work:
        simulation = Simulation(examples, retrain_every=retrain_every, margin=margin, min_examples=min_examples,
                                work=Path(work), tagging_hp=tagging_hp)
        budget = max(budgets)
        queue = simulation.run("queue", budget)
        randoms = [simulation.run("random", budget, random.Random(seed)) for seed in range(random_seeds)]

    def at(run: Run, n: int) -> Scores:
        reached = [k for k in run.curve if k <= n]
        return run.curve[max(reached)]

    rows = []
    for n in budgets:
        q = at(queue, n)
        rows.append({"strategy": "queue", "n": n, "tag_macro_f1": q.tags, "face_pair_f1": q.faces})
    for n in budgets:
        scores = [at(r, n) for r in randoms]
        rows.append({"strategy": "random", "n": n, "tag_macro_f1": float(np.mean([s.tags for s in scores])),
                     "face_pair_f1": float(np.mean([s.faces for s in scores]))})
    checks: dict[str, object] = {}
    for strategy in ("queue", "random"):
        for metric in ("tag_macro_f1", "face_pair_f1"):
            values = [r[metric] for r in rows if r["strategy"] == strategy]
            checks[f"monotone {strategy} {metric}"] = all(b >= a - 1e-9 for a, b in zip(values, values[1:]))
    reference = 100 if 100 in budgets else sorted(budgets)[len(budgets) // 2]
    for metric, attr in (("tag_macro_f1", "tags"), ("face_pair_f1", "faces")):
        target = next(r[metric] for r in rows if r["strategy"] == "random" and r["n"] == reference)
        checks[f"queue N to reach random@{reference} {metric}"] = first_reaching(queue.curve, target, attr)
    promotions = queue.promotions + [p for r in randoms for p in r.promotions]
    checks["queue curve (N: tags/faces)"] = " ".join(
        f"{n}:{s.tags:.3f}/{s.faces:.3f}" for n, s in sorted(queue.curve.items()))
    first, last = queue.curve[0].per_tag, queue.curve[max(queue.curve)].per_tag
    changed = sorted(set(first) | set(last))
    checks["queue per-tag F1, N=0 -> last (- = out of scope)"] = " ".join(
        f"{t}:{_f(first.get(t))}->{_f(last.get(t))}" for t in changed if first.get(t) != last.get(t))
    checks["promotions (queue, random runs)"] = (len(queue.promotions), [len(r.promotions) for r in randoms])
    checks["promotions"] = len(promotions)
    checks["queue gate (N kind: candidate out of fold/approved (judged examples, bootstrap lower bound of the gain))"] = \
        "; ".join(queue.decisions)
    checks["promotion effects (N kind hidden-truth before->after)"] = "; ".join(
        f"{n} {kind} {before:.3f}->{after:.3f}" for n, kind, before, after in promotions)
    checks["regressions after a promotion"] = sum(1 for _, _, before, after in promotions if after < before - 1e-9)
    checks["test photos"] = len(simulation.test)
    checks["test face pairs"] = len(simulation.test_pairs)
    checks["train photos"] = len(simulation.train)
    return Report(tuple(budgets), rows, checks)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_report(report: Report, out=sys.stdout) -> None:
    print(f"{'strategy':<9}{'N':>5}  {'tag macro-F1':>12}  {'face pair F1':>12}", file=out)
    for row in report.rows:
        print(f"{row['strategy']:<9}{row['n']:>5}  {row['tag_macro_f1']:>12.3f}  {row['face_pair_f1']:>12.3f}", file=out)
    print(file=out)
    for name, value in report.checks.items():
        print(f"{name}: {value}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=24, help="augmented variants per source photo")
    parser.add_argument("--hard-copies", type=int, default=12,
                        help="degraded variants per source photo with a person (faces near the threshold)")
    parser.add_argument("--photos", type=int, default=None, help="use only the first N source photos")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--retrain-every", type=int, default=10)
    parser.add_argument("--random-seeds", type=int, default=3)
    parser.add_argument("--min-examples", type=int, default=10, help="the promotion gate's held-out minimum")
    parser.add_argument("--tagging-c", type=float, default=None,
                        help="train_tagging.py's --c (inverse regularisation); the script's default when not given")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    if not LABEL_MODEL.is_file():
        print(f"no label model at {LABEL_MODEL.relative_to(ROOT)}: run `make label-model` first", file=sys.stderr)
        return 2
    started = time.perf_counter()
    examples = build_library(source_photos(args.photos), args.copies, hard_copies=args.hard_copies, cache=args.cache)
    analysed = time.perf_counter()
    report = benchmark(examples, budgets=tuple(int(b) for b in args.budgets.split(",")),
                       retrain_every=args.retrain_every, random_seeds=args.random_seeds,
                       tagging_hp={"c": args.tagging_c} if args.tagging_c is not None else None,
                       min_examples=args.min_examples)
    print_report(report)
    done = time.perf_counter()
    print(f"wall time: {done - started:.0f} s ({analysed - started:.0f} s building the library, "
          f"{done - analysed:.0f} s simulating)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
