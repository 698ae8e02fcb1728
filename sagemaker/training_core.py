"""Training, evaluation and re-application as plain functions: the scikit-learn side of the learning, shared by
the script-mode entry points next to this file (train_tagging.py, train_faces.py, evaluate.py, apply_models.py)
and by whoever measures the learning in-process (benchmarks/feedback_gain.py puts this folder on sys.path).

scikit-learn only fits; what it learns leaves as plain numbers in JSON (photo_organizer.learning's TaggingModel
and FaceMatcher), which numpy alone runs. Only long-stable estimators are used (LogisticRegression,
StratifiedKFold, NeighborhoodComponentsAnalysis), so this runs on scikit-learn 1.4 (SageMaker's "1.4-2"
container, Python 3.10) and 1.9 (the local extra).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (_HERE, _HERE.parent / "lambdas"):  # SageMaker: the package sits beside; locally: ../lambdas
    if (_path / "photo_organizer").is_dir() and str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402

from photo_organizer.learning import evidence as counts  # noqa: E402
from photo_organizer.learning import examples as ex  # noqa: E402
from photo_organizer.learning import faces as face_models  # noqa: E402
from photo_organizer.learning import tagging as tag_models  # noqa: E402
from photo_organizer.learning.cross_fitting import FOLDS, out_of_fold  # noqa: E402
from photo_organizer.learning.datasets import read_photos  # noqa: E402
from photo_organizer.learning.features import build_schema, photo_matrix  # noqa: E402
from photo_organizer.learning.metrics import pair_f1  # noqa: E402
from photo_organizer.learning.promotion import (  # noqa: E402
    DEFAULT_MARGIN,
    DEFAULT_MIN_EACH_ANSWER,
    DEFAULT_MIN_EXAMPLES,
    DIFFERENT_PERSON,
    POSITIVE_TAGS,
    SAME_PERSON,
    HeldOutEvidence,
    decide,
)

MODEL_FILE = "model.json"
MODEL_ARCHIVE = "model.tar.gz"  # what a SageMaker training job leaves in S3, and a ProcessingInput copies in
# a tag needs min_tag_examples negatives and min_tag_positives positives: a custom tag the owner put on two
# photos is already worth learning (its negatives are the reviewed photos without it)
TAGGING_DEFAULTS = {"min_examples": 10, "min_tag_examples": 3, "min_tag_positives": 2, "c": 0.05, "seed": 0}
FACES_DEFAULTS = {"min_pairs": 10, "c": 1.0, "projection": "auto", "min_projection_faces": 12, "seed": 0}
CALIBRATION_FOLDS = 3
MAX_PROJECTION_FACES = 1000
WEAK_EVAL_WEIGHT = counts.WEAK_EVAL_WEIGHT  # a weak label's share in the gate's tag F1 (explicit answers count 1)
SUGGESTION_FLOOR = 0.1  # off-photo tags below this are not worth storing (nor asking about)
# A tag with fewer positive labels than this is not judged out of fold where the approved model saw its labels:
# each fold model keeps 4/5 of a handful (learning.cross_fitting; see evaluate)
MIN_CROSS_FIT_POSITIVES = 2 * FOLDS


# ---------------------------------------------------------------------------------------------------- files
def write_json_atomic(path: Path, body: Mapping) -> None:
    """A temp file in the same folder, then rename: a crash leaves the old file or none, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, ensure_ascii=False, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def load_model_document(directory: Path | str | None) -> dict | None:
    """model.json from a model directory, or from the model.tar.gz SageMaker made of one (read in memory, never
    extracted). None when the directory is absent or empty (no approved model yet)."""
    if directory is None:
        return None
    folder = Path(directory)
    if (folder / MODEL_FILE).is_file():
        return json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    archive = folder / MODEL_ARCHIVE if folder.is_dir() else folder
    if archive.is_file() and archive.name.endswith(".tar.gz"):
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and Path(member.name).name == MODEL_FILE:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        return json.load(io.TextIOWrapper(handle, encoding="utf-8"))
    return None


def _owners(root: Path) -> set[str]:
    """The owners with any example in a split folder."""
    return (
        {e.owner for e in ex.read_tagging_examples(root)}
        | {f.owner for f in ex.read_face_examples(root)}
        | {p.owner for p in ex.read_pair_examples(root)}
    )


# ---------------------------------------------------------------------------------------------------- tagging
def train_tagging_models(train_root: Path | str, **hyperparameters) -> dict:
    """One TaggingModel per owner with enough reviewed photos; the model.json document (owners, skipped)."""
    root = Path(train_root)
    document = fit_tagging_models(ex.read_tagging_examples(root), owners=_owners(root), **hyperparameters)
    # what this model has seen: a later evaluation rebuilds its examples from the feedback up to this instant
    through = ex.read_provenance(root).get("feedback_through")
    if through:
        document["feedback_through"] = through
    return document


def fit_tagging_models(rows: Sequence[ex.TaggingExample], *, owners: Iterable[str] = (), **hyperparameters) -> dict:
    """train_tagging_models on examples in memory (the evaluation refits it without one fold at a time). The
    document records the hyperparameters it was fitted with: the recipe the evaluation cross-fits."""
    hp = {**TAGGING_DEFAULTS, **{k: v for k, v in hyperparameters.items() if v is not None}}
    examples = ex.by_owner(rows)
    models, skipped = [], {}
    for owner in sorted(set(examples) | set(owners)):  # every owner gets a model or the reason it has none
        rows = examples.get(owner, [])
        if len(rows) < int(hp["min_examples"]):
            skipped[owner] = f"{len(rows)} reviewed photos, fewer than min_examples={hp['min_examples']}"
            continue
        model, reason = _train_owner_tagging(owner, rows, hp)
        if model is None:
            skipped[owner] = reason
        else:
            models.append(model)
    return tag_models.document(models, skipped, hyperparameters=hp)


def _train_owner_tagging(owner: str, rows: Sequence[ex.TaggingExample], hp: Mapping):
    from sklearn.linear_model import LogisticRegression

    photos = [row.photo for row in rows]
    schema = build_schema(photos)
    x = photo_matrix(photos, schema)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    scale = np.where(std < 1e-6, 1.0, std)
    xs = (x - mean) / scale
    tags = sorted({tag for row in rows for tag in row.targets})
    kept, weights, bias, platt_a, platt_b, skipped_tags, calibrated, constant = [], [], [], [], [], {}, [], {}
    minimum = int(hp["min_tag_examples"])
    trust = ex.weak_trust(rows)  # of the weak positives, from these rows' answers only (a fold model's: its folds')
    added = {tag for _, tag in ex.added_tags(rows)}  # one owner's rows
    for tag in tags:
        y = np.array([row.targets.get(tag, 0) for row in rows], dtype=int)
        w = np.array(ex.trusted_weights(rows, tag, trust), dtype=float)
        positives, negatives = int(y.sum()), int(len(y) - y.sum())
        if negatives < minimum or positives < min(minimum, int(hp["min_tag_positives"])):
            if (owner, tag) in trust and positives < min(minimum, int(hp["min_tag_positives"])):
                # rejected where analysis put it, too few kept to tell its photos apart: the owner's word decides,
                # every photo gets the keep rate (below SUPPRESS_BELOW after a few noes and no yes)
                rate = trust[(owner, tag)]
                kept.append(tag)
                weights.append(np.zeros(xs.shape[1]))
                bias.append(float(np.log(rate / (1.0 - rate))))
                platt_a.append(1.0)
                platt_b.append(0.0)
                constant[tag] = round(rate, 4)
                continue
            skipped_tags[tag] = (f"{positives} positive / {negatives} negative examples (< "
                                 f"{min(minimum, int(hp['min_tag_positives']))} / {minimum})")
            continue
        classifier = LogisticRegression(C=float(hp["c"]), class_weight="balanced", solver="liblinear", max_iter=2000)
        classifier.fit(xs, y, sample_weight=w)
        # a reviewed photo without a tag the owner adds themselves says little of that tag (the one question
        # asked was about another): calibrated on such weak "no"s, the probabilities sank to the share of photos
        # the owner happened to tag, and a tag true of half the library was suggested nowhere
        # (benchmarks/feedback_gain.py: "white house" P 0.57 -> 0.13 on its photos once it had 6 additions)
        calibrate_on = np.array([not (tag in added and row.is_weak(tag) and not row.targets.get(tag))
                                 for row in rows])
        a, b, platt = _platt(xs, y, w, hp, calibrate_on=calibrate_on)
        kept.append(tag)
        weights.append(classifier.coef_[0])
        bias.append(float(classifier.intercept_[0]))
        platt_a.append(a)
        platt_b.append(b)
        if platt:
            calibrated.append(tag)
    if not kept:
        return None, "no tag has enough positive and negative examples: " + "; ".join(
            f"{t}: {r}" for t, r in sorted(skipped_tags.items())
        )
    model = tag_models.TaggingModel(
        owner=owner,
        schema=schema,
        tags=tuple(kept),
        weights=np.vstack(weights),
        bias=np.array(bias),
        mean=mean,
        scale=scale,
        platt_a=np.array(platt_a),
        platt_b=np.array(platt_b),
        suppressible=frozenset(t for t in kept if _explicit(rows, t, value=0, on_photo=True)),
        suggestible=frozenset(t for t in kept if t in added),
        info={"examples": len(rows), "skipped_tags": skipped_tags, "calibrated_tags": calibrated,
              "keep_rate_tags": constant},
    )
    return model, ""


def _explicit(rows: Sequence[ex.TaggingExample], tag: str, *, value: int, on_photo: bool) -> bool:
    """Did the owner ever say so themselves: reject the tag where analysis put it (value 0, on_photo), or add it
    where analysis had not (value 1, not on_photo)?"""
    return any(
        row.targets.get(tag) == value and not row.is_weak(tag)
        and (tag in tag_models.analysis_tags(row.photo)) == on_photo
        for row in rows
    )


def _platt(xs: np.ndarray, y: np.ndarray, w: np.ndarray, hp: Mapping,
           calibrate_on: np.ndarray | None = None) -> tuple[float, float, bool]:
    """Platt scaling of the balanced logistic model's margins, fitted on held-in folds' out-of-fold margins
    (the final model is refitted on everything) of the rows in calibrate_on (default all). Too few examples of a
    class for the folds or among those rows: (1, 0), plain."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    used = np.ones(len(y), dtype=bool) if calibrate_on is None else np.asarray(calibrate_on, dtype=bool)
    if min(int(y.sum()), int(len(y) - y.sum()), int(y[used].sum()), int((1 - y[used]).sum())) < 2 * CALIBRATION_FOLDS:
        return 1.0, 0.0, False
    margins = np.zeros(len(y))
    folds = StratifiedKFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=int(hp["seed"]))
    for train, held in folds.split(xs, y):
        fold_model = LogisticRegression(C=float(hp["c"]), class_weight="balanced", solver="liblinear", max_iter=2000)
        fold_model.fit(xs[train], y[train], sample_weight=w[train])
        margins[held] = fold_model.decision_function(xs[held])
    sigmoid = LogisticRegression(C=1e4, max_iter=2000)
    sigmoid.fit(margins[used].reshape(-1, 1), y[used], sample_weight=w[used])
    a, b = float(sigmoid.coef_[0][0]), float(sigmoid.intercept_[0])
    if not np.isfinite(a) or a <= 0:
        return 1.0, 0.0, False  # the out-of-fold margins do not rank: keep the plain logistic
    return a, b, True


# ---------------------------------------------------------------------------------------------------- faces
def train_face_matchers(train_root: Path | str, **hyperparameters) -> dict:
    """One FaceMatcher per owner with enough labelled pairs of both kinds; the model.json document."""
    root = Path(train_root)
    return fit_face_matchers(ex.read_pair_examples(root), ex.read_face_examples(root), owners=_owners(root),
                             **hyperparameters)


def fit_face_matchers(pair_rows: Sequence[ex.PairExample], face_rows: Sequence[ex.FaceExample], *,
                      owners: Iterable[str] = (), **hyperparameters) -> dict:
    """train_face_matchers on examples in memory; the document records its hyperparameters (see
    fit_tagging_models)."""
    hp = {**FACES_DEFAULTS, **{k: v for k, v in hyperparameters.items() if v is not None}}
    pairs = ex.by_owner(pair_rows)
    faces = ex.by_owner(face_rows)
    matchers, skipped = [], {}
    for owner in sorted(set(pairs) | set(faces) | set(owners)):
        rows = pairs.get(owner, [])
        same = sum(1 for p in rows if p.same)
        if len(rows) < int(hp["min_pairs"]) or same == 0 or same == len(rows):
            skipped[owner] = (
                f"{len(rows)} labelled face pairs ({same} same person); needs min_pairs={hp['min_pairs']} "
                "with both kinds"
            )
            continue
        matchers.append(_train_owner_matcher(owner, rows, faces.get(owner, []), hp))
    return face_models.document(matchers, skipped, hyperparameters=hp)


def _fit_pair_classifier(rows: Sequence[ex.PairExample], similarities: np.ndarray, hp: Mapping):
    from sklearn.linear_model import LogisticRegression

    features = face_models.pair_features(
        similarities,
        [p.quality_a for p in rows],
        [p.quality_b for p in rows],
        [p.area_a for p in rows],
        [p.area_b for p in rows],
    )
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    scale = np.where(std < 1e-6, 1.0, std)
    y = np.array([p.same for p in rows], dtype=int)
    classifier = LogisticRegression(C=float(hp["c"]), max_iter=2000)
    classifier.fit((features - mean) / scale, y)
    return classifier.coef_[0].astype(float), float(classifier.intercept_[0]), mean, scale


def _train_owner_matcher(owner: str, rows, faces, hp) -> face_models.FaceMatcher:
    info: dict = {"pairs": len(rows), "same": sum(1 for p in rows if p.same), "projection": None}
    projection = None
    similarities = np.array([p.similarity for p in rows])
    fit_rows = list(rows)
    if hp["projection"] != "off":
        projection, info["projection"], cross_fitted = _projection_head(rows, faces, hp)
        if projection is not None and cross_fitted:
            # distances between faces the head was fitted on are flattering; the classifier learns from the
            # cross-fitted ones, as a new face will be measured
            fit_rows, similarities = cross_fitted
    if projection is not None and fit_rows is rows:
        vectors = {f.face_id: f.descriptor_vector() for f in faces}
        projected = {k: v @ projection.T for k, v in vectors.items() if v is not None}
        similarities = np.array([
            float(face_models.similarities_from_distances(np.linalg.norm(projected[p.a] - projected[p.b])))
            if p.a in projected and p.b in projected else p.similarity
            for p in rows
        ])
    coef, intercept, mean, scale = _fit_pair_classifier(fit_rows, similarities, hp)
    return face_models.FaceMatcher(owner, coef, intercept, mean, scale, projection, info)


def _projection_head(rows, faces, hp) -> tuple[np.ndarray | None, str, tuple | None]:
    """NCA (init = identity) on the confirmed faces' descriptors, kept only when, fitted without a fold's photos,
    it separates that fold's pairs better than the raw descriptors do (cross-fitted: the pair classifier then
    never learns from distances the projection was fitted on)."""
    labelled = [f for f in faces if f.person and f.descriptor]
    if len(labelled) > MAX_PROJECTION_FACES:  # NCA is quadratic in the faces: a deterministic sample is plenty
        labelled = sorted(labelled, key=lambda f: hashlib.sha256(f.face_id.encode()).digest())[:MAX_PROJECTION_FACES]
    people = defaultdict(int)
    for f in labelled:
        people[f.person] += 1
    if hp["projection"] == "auto" and (
        len(labelled) < int(hp["min_projection_faces"]) or sum(1 for n in people.values() if n >= 2) < 2
    ):
        return None, f"not enough confirmed faces with descriptors ({len(labelled)}, {len(people)} people)", None
    photos = sorted({f.photo_id for f in labelled})
    fold_of = {photo: i % CALIBRATION_FOLDS for i, photo in enumerate(photos)}
    face_fold = {f.face_id: fold_of[f.photo_id] for f in labelled}
    vectors = {f.face_id: f.descriptor_vector() for f in labelled}
    held_rows, raw, projected_sims = [], [], []
    for fold in range(CALIBRATION_FOLDS):
        fit_faces = [f for f in labelled if face_fold[f.face_id] != fold]
        if len({f.person for f in fit_faces}) < 2:
            continue
        head = _fit_nca([vectors[f.face_id] for f in fit_faces], [f.person for f in fit_faces], hp)
        for p in rows:
            if face_fold.get(p.a) == fold and face_fold.get(p.b) == fold:
                da, db = vectors[p.a] @ head.T, vectors[p.b] @ head.T
                held_rows.append(p)
                raw.append(p.similarity)
                projected_sims.append(float(face_models.similarities_from_distances(np.linalg.norm(da - db))))
    if len(held_rows) < int(hp["min_pairs"]) or len({p.same for p in held_rows}) < 2:
        if hp["projection"] == "on":
            head = _fit_nca([vectors[f.face_id] for f in labelled], [f.person for f in labelled], hp)
            return head, "on (too few cross-fitted pairs to compare)", None
        return None, f"too few cross-fitted pairs to judge a projection head ({len(held_rows)})", None
    raw_f1 = _cross_fitted_pair_f1(held_rows, np.array(raw), hp)
    projected_f1 = _cross_fitted_pair_f1(held_rows, np.array(projected_sims), hp)
    verdict = f"cross-fitted pair F1 {projected_f1:.3f} projected vs {raw_f1:.3f} raw on {len(held_rows)} pairs"
    if hp["projection"] == "on" or projected_f1 > raw_f1:
        head = _fit_nca([vectors[f.face_id] for f in labelled], [f.person for f in labelled], hp)
        return head, "kept: " + verdict, (held_rows, np.array(projected_sims))
    return None, "dropped: " + verdict, None


def _cross_fitted_pair_f1(rows, similarities: np.ndarray, hp) -> float:
    """The pair classifier's F1 on these pairs, fitted on the other half (pairs ordered by id: deterministic)."""
    order = np.argsort([f"{p.a}/{p.b}" for p in rows])
    halves = [order[0::2], order[1::2]]
    truth, guess = [], []
    for fit, judge in (halves, halves[::-1]):
        fit_rows = [rows[i] for i in fit]
        if len({p.same for p in fit_rows}) < 2:
            continue
        coef, intercept, mean, scale = _fit_pair_classifier(fit_rows, similarities[fit], hp)
        matcher = face_models.FaceMatcher("", coef, intercept, mean, scale)
        for i in judge:
            p = rows[i]
            truth.append(p.same)
            guess.append(matcher.probability(similarities[i], p.quality_a, p.quality_b,
                                              area_a=p.area_a, area_b=p.area_b) >= 0.5)
    return pair_f1(truth, guess)["pair_f1"] if truth else 0.0


def _pairwise_distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows, via the Gram matrix (n x n memory, not n x n x d)."""
    squares = (x * x).sum(axis=1)
    return np.sqrt(np.maximum(squares[:, None] + squares[None, :] - 2.0 * (x @ x.T), 0.0))


def _fit_nca(vectors: Sequence[np.ndarray], people: Sequence[str], hp) -> np.ndarray:
    from sklearn.neighbors import NeighborhoodComponentsAnalysis

    x = np.vstack(vectors)
    nca = NeighborhoodComponentsAnalysis(init="identity", max_iter=50, random_state=int(hp["seed"]))
    nca.fit(x, np.array(people))
    head = np.asarray(nca.components_, dtype=np.float64)
    # NCA rescales the space freely; put it back on the descriptors' scale: the midpoint between the same-person
    # and different-person median distances lands where it was, so the common similarity scale (dlib's 0.6 ->
    # 0.80) still spans the decision region instead of saturating at 0
    labels = np.array(people)
    upper = np.triu_indices(len(x), k=1)
    same = (labels[:, None] == labels[None, :])[upper]
    if same.any() and (~same).any():
        raw = _pairwise_distances(x)[upper]
        moved = _pairwise_distances(x @ head.T)[upper]
        moved_mid = np.median(moved[same]) + np.median(moved[~same])
        if moved_mid > 0:
            head *= float((np.median(raw[same]) + np.median(raw[~same])) / moved_mid)
    return head


# ---------------------------------------------------------------------------------------------------- evaluation
def evaluate(
    examples_root: Path | str,
    *,
    candidate_tagging: Mapping | None = None,
    approved_tagging: Mapping | None = None,
    candidate_faces: Mapping | None = None,
    approved_faces: Mapping | None = None,
    margin: float = DEFAULT_MARGIN,
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    min_each_answer: int = DEFAULT_MIN_EACH_ANSWER,
) -> dict:
    """evaluation.json: the candidate, the approved model and the untrained baseline on the same labelled examples
    (preprocess.py's labelled/ folder, every example with its fold), and the gate's decision per kind.

    The candidate is judged cross-fitted (learning.cross_fitting): its recipe, the training with the hyperparameters
    its model.json records, is refitted without each fold in turn and predicts that fold, so every example is judged
    by a model that never saw it, and the gate's bootstrap resamples all of them. The candidate promoted is the
    document given: the same recipe fitted on every fold (the training step's output, from the same folder).
    The approved model is judged as it is on the same examples; it may have been fitted on some of them (in sample),
    which flatters it: the comparison leans towards keeping it (conservative). One exception, for tagging: a tag
    with few positive labels (fewer than MIN_CROSS_FIT_POSITIVES; a custom tag the owner put on four photos) cannot
    be judged out of fold against an approved model fitted on those labels: each fold model keeps three of the four
    and misses the one it judges, which the approved model, in sample, recalls. No successor ever passed that
    (benchmarks/feedback_gain.py: the queue kept its first model for 80 answers while a successor was +0.056 on the
    hidden truth; "homework" 0.86 in sample against 0.33 out of fold). So on those labels, where preprocess's
    rebuild of the approved model's training examples (APPROVED_TAGGING_FILE, from its feedback_through) shows it
    was fitted on them as they are now, the candidate is judged as it is too: both in sample. Judging the approved
    model out of fold everywhere (its recipe refitted on its own examples) was measured too: it promoted candidates
    that fell on the hidden truth (0.503 -> 0.458: a custom tag's calibration that no fold model had). Without
    that rebuild (an older model without feedback_through) the approved model is in sample everywhere.
    An approved document of None is the untrained baseline (nothing promoted yet); an owner a model document has no
    model for is scored with the baseline behaviour; a candidate of None (nothing trained) is scored as the
    baseline."""
    root = Path(examples_root)
    tagging = ex.read_tagging_examples(root)
    pairs = ex.read_pair_examples(root)
    faces = ex.read_face_examples(root)
    result = {
        "tagging": _evaluate_tagging(tagging, candidate_tagging, approved_tagging,
                                     ex.read_tagging_examples_as_approved(root)),
        "faces": _evaluate_faces(pairs, faces, candidate_faces, approved_faces),
        "gate": {"margin": margin, "min_examples": min_examples, "min_each_answer": min_each_answer},
    }
    for kind in ("tagging", "faces"):
        section = result[kind]
        decision = decide(result, kind, margin, min_examples, min_each_answer=min_each_answer)
        section["decision"] = decision.to_json()
        section["promote"] = decision.promote
        section["gate_passed"] = int(decision.promote)  # what the pipeline's ConditionStep compares (a number)
    return result


def _recipe(document: Mapping) -> dict:
    """The hyperparameters a model document was fitted with (fit_*'s defaults fill in what an older one lacks)."""
    return dict(document.get("hyperparameters") or {})


def _tag_guesses(rows: Sequence[ex.TaggingExample], models: Mapping[str, tag_models.TaggingModel]) -> list[set[str]]:
    """The tags each example's photo would carry: its owner's model's, else the untrained behaviour (analysis)."""
    out: list[set[str]] = [set() for _ in rows]
    grouped = defaultdict(list)
    for i, r in enumerate(rows):
        grouped[r.owner].append(i)
    for owner, indexes in grouped.items():
        photos = [rows[i].photo for i in indexes]
        model = models.get(owner)
        tag_sets = model.predicted_tags_many(photos) if model else [tag_models.analysis_tags(p) for p in photos]
        for i, tags in zip(indexes, tag_sets):
            out[i] = set(tags)
    return out


def _cross_fitted_tags(rows: Sequence[ex.TaggingExample], candidate: Mapping) -> list[set[str]]:
    recipe = _recipe(candidate)

    def fit(fold: int) -> Mapping[str, tag_models.TaggingModel]:
        return tag_models.models_from_document(fit_tagging_models([r for r in rows if r.fold != fold], **recipe))

    return out_of_fold([r.fold for r in rows], fit, lambda models, indexes: _tag_guesses([rows[i] for i in indexes],
                                                                                          models))


def _few_positive_labels_the_approved_saw(rows: Sequence[ex.TaggingExample],
                                          as_approved: Sequence[ex.TaggingExample]) -> list[set[str]]:
    """Per row, its labels that the approved model was fitted on as they are now (same value, same weak/explicit)
    of a tag with fewer than MIN_CROSS_FIT_POSITIVES positive labels among the rows: where the candidate is
    judged as it is too."""
    positives: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        for tag in row.positives():
            positives[(row.owner, tag)] += 1
    then = {(r.owner, r.photo.photo_id): r for r in as_approved}
    out = []
    for row in rows:
        seen = then.get((row.owner, row.photo.photo_id))
        out.append(set() if seen is None else {
            tag for tag, value in row.targets.items()
            if positives[(row.owner, tag)] < MIN_CROSS_FIT_POSITIVES and seen.targets.get(tag) == value
            and seen.is_weak(tag) == row.is_weak(tag)})
    return out


def _evaluate_tagging(rows, candidate: Mapping | None, approved: Mapping | None,
                      as_approved: Sequence[ex.TaggingExample] | None = None) -> dict:
    """Tag macro-F1 on the reviewed photos, each label counted with its weight: what the owner SAID (added/confirmed
    = yes, rejected = no) fully, the weak labels at WEAK_EVAL_WEIGHT only, a weak positive of a tag the owner
    rejected where analysis put it also times the share they kept where asked (learning.evidence.judged_trust).

    The candidate is judged out of fold, the approved model as it is; on the few-positive labels the approved model
    was fitted on (as_approved: preprocess's rebuild of its training examples) the candidate as it is too."""
    baseline_guesses = _tag_guesses(rows, {})
    candidate_guesses = _cross_fitted_tags(rows, candidate) if candidate is not None else baseline_guesses
    approved_guesses = (_tag_guesses(rows, tag_models.models_from_document(approved)) if approved is not None
                        else baseline_guesses)
    in_sample: dict[str, int] = defaultdict(int)
    if approved is not None and candidate is not None and as_approved is not None:
        fitted = _tag_guesses(rows, tag_models.models_from_document(candidate))
        for i, labels in enumerate(_few_positive_labels_the_approved_saw(rows, as_approved)):
            if labels:
                candidate_guesses[i] = ({t for t in fitted[i] if t in labels}
                                        | {t for t in candidate_guesses[i] if t not in labels})
                for tag in labels:
                    in_sample[f"{rows[i].owner}/{tag}"] += 1

    trust = counts.judged_trust(rows)

    def score(guesses: list[set[str]], owners: int) -> dict:
        weighted = counts.weighted_macro_f1(rows, guesses, WEAK_EVAL_WEIGHT, trust)
        explicit = counts.weighted_macro_f1(rows, guesses, 0.0)
        return {**weighted, "explicit_macro_f1": explicit["macro_f1"], "owners": owners}

    baseline = score(baseline_guesses, 0)
    labels = counts.tag_labels(rows)
    evidence = HeldOutEvidence.build(
        len(rows), labels,
        counts.tag_count_rows(rows, candidate_guesses, labels, WEAK_EVAL_WEIGHT, trust),
        counts.tag_count_rows(rows, approved_guesses, labels, WEAK_EVAL_WEIGHT, trust),
        {POSITIVE_TAGS: counts.positive_labels(rows, WEAK_EVAL_WEIGHT, trust)},
    )
    return {
        "candidate": score(candidate_guesses, len(tag_models.models_from_document(candidate))),
        "approved": score(approved_guesses, len(tag_models.models_from_document(approved))) if approved is not None
        else {**baseline, "untrained": True},
        "baseline": baseline,
        "examples": len(rows),
        "owners": len({r.owner for r in rows}),
        "folds": len({r.fold for r in rows}),
        "judged": "candidate out of fold (cross-fitted), approved and baseline as they are",
        # labels of few-positive tags the approved model was fitted on: the candidate judged as it is there too
        "judged_in_sample_for_both": dict(sorted(in_sample.items())),
        "weak_weight": WEAK_EVAL_WEIGHT,
        "held_out": evidence.to_json(),  # per-example counts: the gate's paired bootstrap resamples them
    }


def _pair_answers(pairs: Sequence[ex.PairExample], matchers: Mapping[str, face_models.FaceMatcher],
                  vectors: Mapping[tuple[str, str], np.ndarray | None]) -> list[tuple[bool, bool]]:
    """Per pair: (P(same) >= 0.5, similarity >= the matcher's clustering threshold); an owner without a matcher
    gets the fixed threshold's answer for both."""
    out = []
    for p in pairs:
        matcher = matchers.get(p.owner)
        if matcher is None:
            same = p.similarity >= face_models.DEFAULT_THRESHOLD
            out.append((same, same))
            continue
        va, vb = vectors.get((p.owner, p.a)), vectors.get((p.owner, p.b))
        s = matcher.similarity(va, vb) if matcher.projection is not None and va is not None and vb is not None \
            else p.similarity
        out.append((matcher.probability(s, p.quality_a, p.quality_b, area_a=p.area_a, area_b=p.area_b) >= 0.5,
                    s >= matcher.threshold))
    return out


def _evaluate_faces(pairs, faces, candidate: Mapping | None, approved: Mapping | None) -> dict:
    """Face pair F1 on the pairs whose two photos share a fold (a pair across two folds has no fold model blind to
    both photos: it is trained on, never judged)."""
    judged = [p for p in pairs if p.fold is not None]
    vectors = {(f.owner, f.face_id): f.descriptor_vector() for f in faces}
    truth = [p.same for p in judged]
    baseline_answers = _pair_answers(judged, {}, vectors)
    if candidate is not None:
        recipe = _recipe(candidate)

        def fit(fold: int) -> Mapping[str, face_models.FaceMatcher]:
            return face_models.matchers_from_document(fit_face_matchers(
                [p for p in pairs if not p.touches(fold)], [f for f in faces if f.fold != fold], **recipe))

        candidate_answers = out_of_fold([p.fold for p in judged], fit,
                                        lambda matchers, indexes: _pair_answers([judged[i] for i in indexes],
                                                                                 matchers, vectors))
    else:
        candidate_answers = baseline_answers
    approved_answers = (_pair_answers(judged, face_models.matchers_from_document(approved), vectors)
                        if approved is not None else baseline_answers)

    def score(answers: Sequence[tuple[bool, bool]], owners: int) -> dict:
        metrics = pair_f1(truth, [said for said, _ in answers])
        metrics["threshold_pair_f1"] = pair_f1(truth, [by_threshold for _, by_threshold in answers])["pair_f1"]
        metrics["owners"] = owners
        return metrics

    baseline = score(baseline_answers, 0)
    same = sum(truth)
    evidence = HeldOutEvidence.build(
        len(judged), ["same person"],
        counts.pair_count_rows(truth, [said for said, _ in candidate_answers]),
        counts.pair_count_rows(truth, [said for said, _ in approved_answers]),
        {SAME_PERSON: same, DIFFERENT_PERSON: len(truth) - same},
    )
    return {
        "candidate": score(candidate_answers, len(face_models.matchers_from_document(candidate))),
        "approved": score(approved_answers, len(face_models.matchers_from_document(approved)))
        if approved is not None else {**baseline, "untrained": True},
        "baseline": baseline,
        "pairs": len(judged),
        "pairs_across_folds": len(pairs) - len(judged),
        "owners": len({p.owner for p in judged}),
        "folds": len({p.fold for p in judged}),
        "judged": "candidate out of fold (cross-fitted), approved and baseline as they are",
        "held_out": evidence.to_json(),  # per-pair counts: the gate's paired bootstrap resamples them
    }


# ---------------------------------------------------------------------------------------------------- re-apply
def apply_models(
    features_root: Path | str, tagging: Mapping | None = None, faces: Mapping | None = None
) -> tuple[list[dict], dict[str, dict]]:
    """The approved models over the library snapshot: one suggestions row per photo of an owner with a tagging
    model ({owner, photo_id, suggestions: [{tag, confidence, on_photo}]}: every on-photo tag the model knows,
    off-photo ones from SUGGESTION_FLOOR), and owner -> face matcher JSON."""
    models = tag_models.models_from_document(tagging)
    rows: list[dict] = []
    grouped = defaultdict(list)
    for photo in read_photos(Path(features_root)):
        if photo.owner in models:
            grouped[photo.owner].append(photo)
    for owner in sorted(grouped):
        photos = grouped[owner]
        for photo, scores in zip(photos, models[owner].suggest_many(photos)):
            kept = [s for s in scores if s.on_photo or s.confidence >= SUGGESTION_FLOOR]
            rows.append({
                "owner": owner,
                "photo_id": photo.photo_id,
                "suggestions": [{"tag": s.tag, "confidence": s.confidence, "on_photo": s.on_photo} for s in kept],
            })
    matchers = {owner: m.to_json() for owner, m in face_models.matchers_from_document(faces).items()}
    return rows, matchers


# ---------------------------------------------------------------------------------------------------- all of it
def retrain_in_process(
    dataset_root: Path | str,
    work_dir: Path | str,
    *,
    approved_tagging: Mapping | None = None,
    approved_faces: Mapping | None = None,
    folds: int = FOLDS,
    tagging_hyperparameters: Mapping | None = None,
    faces_hyperparameters: Mapping | None = None,
    margin: float = DEFAULT_MARGIN,
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    min_each_answer: int = DEFAULT_MIN_EACH_ANSWER,
) -> dict:
    """preprocess -> train both kinds on every labelled example -> evaluate (cross-fitted) against the approved
    documents, in this process (what the scripts do one step each): {"summary", "tagging", "faces", "evaluation"}
    with the model documents."""
    work = Path(work_dir)
    summary = ex.build_examples(Path(dataset_root), work, folds=folds,
                                approved_through=(approved_tagging or {}).get("feedback_through"))
    labelled = work / ex.LABELLED_DIR
    tagging = train_tagging_models(labelled, **dict(tagging_hyperparameters or {}))
    faces = train_face_matchers(labelled, **dict(faces_hyperparameters or {}))
    evaluation = evaluate(
        labelled,
        candidate_tagging=tagging,
        approved_tagging=approved_tagging,
        candidate_faces=faces,
        approved_faces=approved_faces,
        margin=margin,
        min_examples=min_examples,
        min_each_answer=min_each_answer,
    )
    return {"summary": summary, "tagging": tagging, "faces": faces, "evaluation": evaluation}
