"""The search index's lifecycle on OpenSearch: the mapping and template, versioned indices behind the alias
and the atomic alias swap of a reindex, and the drift between the index and the table (reconcile). Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photo_organizer.errors import (
    ValidationError,
)
from photo_organizer.search.models import (
    SearchDocument,
)

MAPPING_FILE = Path(__file__).with_name("opensearch_mapping.json")


# Serverless manages shards, replicas and refreshes, and a SEARCH collection has no vectors (opensearch_index).
SERVERLESS_DROPPED_SETTINGS = ("knn", "number_of_shards", "number_of_replicas", "refresh_interval")


def load_mapping(*, serverless: bool = False) -> dict[str, Any]:
    mapping = json.loads(MAPPING_FILE.read_text(encoding="utf-8"))
    if serverless:
        for name in SERVERLESS_DROPPED_SETTINGS:
            mapping["settings"]["index"].pop(name, None)
        del mapping["mappings"]["properties"]["embedding"]
    return mapping


def index_name(alias: str, version: int) -> str:
    if version < 1:
        raise ValidationError("index versions start at 1")
    return f"{alias}-v{version}"


def template_body(alias: str, *, serverless: bool = False) -> dict[str, Any]:
    mapping = load_mapping(serverless=serverless)
    return {
        "index_patterns": [f"{alias}-v*"],
        "priority": 100,
        "template": {"settings": mapping["settings"], "mappings": mapping["mappings"]},
        "_meta": mapping["_meta"],
    }


def alias_swap_actions(alias: str, current: Iterable[str], new_index: str) -> dict[str, Any]:
    """One _aliases call: OpenSearch applies its actions atomically, so readers see old or new, never none."""
    actions: list[dict[str, Any]] = [
        {"remove": {"index": name, "alias": alias}} for name in sorted(current) if name != new_index
    ]
    actions.append({"add": {"index": new_index, "alias": alias}})
    return {"actions": actions}


@dataclass(frozen=True)
class IndexedEntry:
    version: int
    deleted: bool = False


@dataclass(frozen=True)
class Drift:
    missing: tuple[SearchDocument, ...] = ()
    stale: tuple[SearchDocument, ...] = ()
    orphaned: tuple[tuple[str, str, int], ...] = ()  # (owner, photo_id, indexed version)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stale or self.orphaned)


def diff_index(
    table_documents: Iterable[SearchDocument], indexed: Mapping[tuple[str, str], IndexedEntry]
) -> Drift:
    """Table (the truth: the documents of searchable photos) against the index's live documents and tombstones."""
    missing, stale, seen = [], [], set()
    for document in table_documents:
        key = (document.owner, document.photo_id)
        seen.add(key)
        entry = indexed.get(key)
        if entry is None or entry.deleted:
            missing.append(document)
        elif entry.version < document.version:
            stale.append(document)
    orphaned = sorted(
        (owner, photo_id, entry.version)
        for (owner, photo_id), entry in indexed.items()
        if not entry.deleted and (owner, photo_id) not in seen
    )
    return Drift(tuple(missing), tuple(stale), tuple(orphaned))


@dataclass
class ReindexReport:
    index: str
    previous: tuple[str, ...]
    written: int
    not_newer: int = 0
    failed: list[str] = field(default_factory=list)
