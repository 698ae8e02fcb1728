"""Account erasure in the training data: pure transforms that take one owner out of a file without touching the others.

The cloud's dataset bucket holds the owner in three shapes, and each shape has its own way out:
- the feedback lines written since the owner-partitioned layout (`feedback/owner=<owner>/...`): a key prefix, deleted
  whole (every version), nothing to read;
- parts written before it (`feedback/date=.../<part>.jsonl`, a batch of several owners' lines) and the run files under
  `runs/<execution id>/` (snapshots, labelled example sets: JSON Lines with an `owner` field): rewritten without the
  owner's lines (`without_owner_lines`);
- JSON documents keyed by owner (model.json: `owners`/`skipped`, matchers.json) and the tarballs SageMaker makes of
  them (model.tar.gz, output.tar.gz): rewritten without the owner's keys and records (`without_owner`). Each owner's
  model is fitted on that owner's examples only (sagemaker/training_core.py), so dropping the owner's entry leaves
  nothing learned from them and every other owner's model exactly as it was;
- the evaluation (evaluation.json, and the local registry's metrics.json): its labels are "<owner>/<tag>", as keys
  (`per_tag`) and in the held-out evidence (`labels`, rows indexing them: learning.promotion). The owner's labels go
  with their rows and the other labels are renumbered: the evidence stays one the gate can read, its aggregate
  scores (computed before the erasure) stay as they were and name nobody. Training summaries listing the owners
  (`owners: [...]`) lose the owner's id.

A file none of these understands but that names the owner is reported (`Stripped.unreadable`), never guessed at.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any

ERASURES_PREFIX = "erasures/"  # the tombstones: one object per erased owner (see tombstone_key)


def tombstone_key(owner: str) -> str:
    """`erasures/<sha256 of the owner>.json`: what makes the feedback writer skip an erased owner's late events. The
    digest, not the id: a listing of the erased accounts names none of them."""
    return f"{ERASURES_PREFIX}{hashlib.sha256(owner.encode('utf-8')).hexdigest()}.json"


@dataclass(frozen=True)
class Stripped:
    data: bytes  # the file without the owner (the same bytes when nothing of the owner was in it; b"": nothing left)
    removed: int  # lines, keys or records of the owner taken out
    unreadable: bool = False  # names the owner in a shape none of the transforms knows: left as it was

    @property
    def changed(self) -> bool:
        return self.removed > 0


def without_owner_lines(data: bytes, owner: str) -> Stripped:
    """JSON Lines without the lines whose `owner` is the owner; the others keep their bytes and order."""
    kept: list[bytes] = []
    removed = 0
    for raw in data.splitlines(keepends=True):
        if raw.strip() and owner.encode("utf-8") in raw and _line_owner(raw) == owner:
            removed += 1
        else:
            kept.append(raw)
    if not removed:
        return Stripped(data, 0, unreadable=_names(data, owner))
    out = b"".join(kept)
    return Stripped(out, removed, unreadable=_names(out, owner))


def without_owner(data: bytes, owner: str, name: str) -> Stripped:
    """Any run file by its name: JSON Lines, a JSON document, or a .tar.gz of those."""
    if owner.encode("utf-8") not in data and not name.endswith(".gz"):
        return Stripped(data, 0)
    if name.endswith(".jsonl"):
        return without_owner_lines(data, owner)
    if name.endswith(".json"):
        try:
            document = json.loads(data)
        except ValueError:
            return Stripped(data, 0, unreadable=True)
        stripped, removed = _strip(document, owner)
        if not removed:
            return Stripped(data, 0, unreadable=_names(data, owner))
        if stripped is None:  # the whole document was the owner's
            return Stripped(b"", removed)
        out = json.dumps(stripped, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return Stripped(out, removed, unreadable=_names(out, owner))
    if name.endswith(".tar.gz"):
        return _without_owner_in_tarball(data, owner)
    return Stripped(data, 0, unreadable=_names(data, owner))


def _strip(value: Any, owner: str) -> tuple[Any, int]:
    """Drops dict keys that are the owner or one of the owner's labels ("<owner>/<tag>"), dicts whose `owner` is the
    owner, the owner's id in lists and the owner's labels in held-out evidence, anywhere in the document."""
    label = f"{owner}/"
    if isinstance(value, dict):
        if value.get("owner") == owner:
            return None, 1
        if _is_held_out(value):
            return _held_out_without(value, label)
        out, removed = {}, 0
        for key, item in value.items():
            if key == owner or (isinstance(key, str) and key.startswith(label)):
                removed += 1
                continue
            stripped, n = _strip(item, owner)
            if n and stripped is None:
                removed += n
                continue
            out[key], removed = stripped, removed + n
        return out, removed
    if isinstance(value, list):
        out_list, removed = [], 0
        for item in value:
            if item == owner:  # a summary's list of the owners trained or skipped
                removed += 1
                continue
            stripped, n = _strip(item, owner)
            removed += n
            if not (n and stripped is None):
                out_list.append(stripped)
        return out_list, removed
    return value, 0


_EVIDENCE_ROWS = ("candidate", "approved")  # learning.promotion.HeldOutEvidence.to_json: [example, label, tp, fp, fn]


def _is_held_out(value: dict) -> bool:
    labels = value.get("labels")
    return (isinstance(labels, list) and all(isinstance(name, str) for name in labels)
            and all(isinstance(value.get(rows), list) for rows in _EVIDENCE_ROWS))


def _held_out_without(evidence: dict, label: str) -> tuple[dict, int]:
    """The evidence without the labels starting with `label` ("<owner>/") and the rows counting them; the other
    labels keep their order under new indexes. A row that is not [example, label, ...] is left as it was."""
    labels = evidence["labels"]
    kept = [i for i, name in enumerate(labels) if not name.startswith(label)]
    if len(kept) == len(labels):
        return evidence, 0
    renumbered = {old: new for new, old in enumerate(kept)}
    out = {**evidence, "labels": [labels[i] for i in kept]}
    removed = len(labels) - len(kept)
    for name in _EVIDENCE_ROWS:
        rows = []
        for row in evidence[name]:
            index = row[1] if isinstance(row, list) and len(row) >= 2 and isinstance(row[1], int) else None
            if index in renumbered:
                rows.append([row[0], renumbered[index], *row[2:]])
            elif index is not None and 0 <= index < len(labels):
                removed += 1  # counts for one of the owner's labels
            else:
                rows.append(row)  # not a row of this shape: nothing of the owner's in it
        out[name] = rows
    return out, removed


def _without_owner_in_tarball(data: bytes, owner: str) -> Stripped:
    try:
        members = _read_tarball(data)
    except (tarfile.TarError, OSError, EOFError):
        return Stripped(data, 0, unreadable=_names(data, owner))
    removed, unreadable, rewritten = 0, False, []
    for info, content in members:
        if content is None:
            rewritten.append((info, None))
            continue
        stripped = without_owner(content, owner, info.name)
        removed += stripped.removed
        unreadable = unreadable or stripped.unreadable
        rewritten.append((info, stripped.data))
    if not removed:
        return Stripped(data, 0, unreadable=unreadable)
    return Stripped(_write_tarball(rewritten), removed, unreadable=unreadable)


def _read_tarball(data: bytes) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info) if info.isfile() else None
            out.append((info, handle.read() if handle is not None else None))
    return out


def _write_tarball(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            if content is None:
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _line_owner(raw: bytes) -> str | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body.get("owner") if isinstance(body, dict) else None


def _names(data: bytes, owner: str) -> bool:
    return owner.encode("utf-8") in data
