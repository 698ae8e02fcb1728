"""The isolation cases, generated from an OpenAPI document: which slots of which operation carry ids, a body for
each request shape, and the requests that put A's ids into B's calls. Transport-free: tests/e2e/test_isolation_e2e.py
sends them over HTTP to the local gateway, tests/integration/test_isolation_moto.py to the cloud API handler."""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field

MARK = "zqxmarker"  # in A's file names, tags and person names: B must never read it

# Parameter and body-field names that carry an id of the caller's data, by kind.
ID_KINDS = {"photo_id": "photo", "person_id": "person", "source_person_id": "person", "face_id": "face",
            "feedback_id": "feedback"}
CURSOR_PARAMS = {"cursor"}
FILTER_PARAMS = {"person": "person"}  # query filters: B filtering by A's id finds nothing (2xx, empty)
SUSPECT_ID = re.compile(r"(^|_)id$|_ids?$|^cursor$")

# Operations B can call without any id (listings also take A's cursor: an id case too): what B's plain call proves.
# Every operation without an id slot must be here, with its reason.
NO_ID_OPERATIONS = {
    "GET /photos": "a listing: B's page holds only B's photos",
    "GET /photos/months": "month counts of B's own timeline only; no id to aim at A",
    "GET /people": "a listing: B's people only",
    "GET /settings/biometrics": "B's own consent; no id to aim at A",
    "PUT /settings/biometrics": "changes the caller's consent only: run as a third user, A's library unchanged",
    "GET /review": "B's own questions only (A's review items are tried below, posted by B)",
    "GET /analysis/progress": "B's own waiting/analysing/done/failed counts only",
    "GET /search": "B searching for A's marker and with A's person filter finds nothing; A's cursor: id case",
    "GET /search/suggest": "B's prefix suggestions never offer A's tags, people or places",
    "POST /uploads": "the ticket's key is under B's own prefix; pointing it at A's key is the upload-key case",
    "DELETE /account": "erases the caller: run by a fresh user of its own, then A's library is unchanged",
}
NO_ID_QUERIES = {
    "GET /search": {"q": MARK, "include_hidden": "true", "include_sensitive": "true"},
    "GET /search/suggest": {"prefix": MARK[:4]},
    "GET /people": {"include_hidden": "true"},
    "GET /review": {"include_sensitive": "true"},
}
NO_ID_BODIES = {
    "PUT /settings/biometrics": {"biometric_consent": False},
    "POST /uploads": {"filename": "b.jpg", "content_type": "image/jpeg", "size": 10},
}
# Run as a user of their own: they change the caller's whole library.
OWN_USER = {"PUT /settings/biometrics", "DELETE /account"}


@dataclass
class Library:
    owner: str  # the token's sub
    token: str = ""
    ids: dict[str, list[str]] = field(default_factory=dict)  # kind -> ids
    cursors: dict[str, str] = field(default_factory=dict)  # operation label -> a next_cursor of this user
    signed_urls: list[str] = field(default_factory=list)
    review_answers: list[dict] = field(default_factory=list)

    def first(self, kind: str) -> str:
        return self.ids[kind][0]


# ---- cases, generated from the document ------------------------------------------------------------------------


def _resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        schema = functools.reduce(lambda node, part: node[part], schema["$ref"].lstrip("#/").split("/"), document)
    return schema


def example(schema: dict, document: dict):
    """A small value the schema accepts (every property filled, the first choice of every union)."""
    schema = _resolve(schema, document)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [o for o in schema[union] if _resolve(o, document).get("type") != "null"]
            return example(options[0], document)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: example(sub, document) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [example(schema.get("items", {}), document)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    return "x" * max(1, int(schema.get("minLength", 1)))


def body_examples(operation: dict, document: dict) -> list:
    """One body per shape: a discriminated union gives one per mapped type."""
    media = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
    if media is None:
        return [None]
    schema = _resolve(media["schema"], document)
    mapping = (schema.get("discriminator") or {}).get("mapping")
    if not mapping:
        return [example(schema, document)]
    field_name = schema["discriminator"]["propertyName"]
    return [example({"$ref": ref}, document) | {field_name: value} for value, ref in mapping.items()]


def body_id_slots(body) -> list[str]:
    return [name for name in (body or {}) if name in ID_KINDS] if isinstance(body, dict) else []


@dataclass(frozen=True)
class Case:
    label: str
    slots: tuple[str, ...]  # "path:photo_id", "query:cursor", "body:face_id", ...
    foreign: tuple[str, ...]  # the slots holding A's value (the others hold B's own)
    body_index: int = 0

    @property
    def id(self) -> str:
        return f"{self.label} A's {','.join(self.foreign)}" + (f" #{self.body_index}" if self.body_index else "")


def operations(document: dict) -> dict[str, dict]:
    return {f"{m.upper()} {p}": op | {"_path": p, "_method": m.upper()}
            for p, ops in document["paths"].items() for m, op in ops.items()}


def id_slots(operation: dict, body) -> tuple[str, ...]:
    slots = [f"{p['in']}:{p['name']}" for p in operation.get("parameters", [])
             if p["name"] in ID_KINDS or p["name"] in CURSOR_PARAMS]
    return tuple(slots + [f"body:{name}" for name in body_id_slots(body)])


def generate_cases(document: dict) -> list[Case]:
    cases = []
    for label, operation in operations(document).items():
        for index, body in enumerate(body_examples(operation, document)):
            slots = id_slots(operation, body)
            if not slots:
                continue
            kinds = [ID_KINDS.get(slot.split(":", 1)[1], slot) for slot in slots]
            if len(set(kinds)) == len(kinds):
                # Two slots of one kind (a merge's two people) would get the same id twice: refused as a self-merge
                # whoever owns it. Each slot is A's on its own below, with B's own ids in the others.
                cases.append(Case(label, slots, slots, index))
            if len(slots) > 1:
                cases += [Case(label, slots, (slot,), index) for slot in slots]
    return cases


def unmapped_params(document: dict) -> list[str]:
    """Parameters or body fields that look like ids but that no rule above maps (a new endpoint's)."""
    found = []
    for label, operation in operations(document).items():
        names = [p["name"] for p in operation.get("parameters", [])]
        for body in body_examples(operation, document):
            names += list(body) if isinstance(body, dict) else []
        known = ID_KINDS.keys() | CURSOR_PARAMS | FILTER_PARAMS.keys()
        found += [f"{label}: {name}" for name in names if SUSPECT_ID.search(name) and name not in known]
    return sorted(set(found))


def request_for(case: Case, document: dict, a: Library, b: Library) -> tuple[str, str, dict, object]:
    operation = operations(document)[case.label]
    body = copy.deepcopy(body_examples(operation, document)[case.body_index])
    path, query = operation["_path"], {}

    def value(slot: str) -> str:
        owner = a if slot in case.foreign else b
        name = slot.split(":", 1)[1]
        if name in CURSOR_PARAMS:
            return owner.cursors[case.label]
        kind = ID_KINDS[name]
        # The n-th slot of a kind takes the owner's n-th id of it when there is one (a merge's two people).
        earlier = [s for s in case.slots[: case.slots.index(slot)] if ID_KINDS.get(s.split(":", 1)[1]) == kind]
        ids = owner.ids[kind]
        return ids[len(earlier)] if len(earlier) < len(ids) else ids[0]

    for slot in case.slots:
        where, name = slot.split(":", 1)
        if where == "path":
            path = path.replace("{" + name + "}", value(slot))
        elif where == "query":
            query[name] = value(slot)
        else:
            body[name] = value(slot)
    return operation["_method"], path, query, body


def controls(cases: list[Case]) -> list[Case]:
    """Each request shape once with B's own ids in every slot. None may answer 404/403: then a 404 with A's ids comes
    from ownership, not from a request that could never reach anything. They change B's library: run them after the
    cases, in this order (the photo's deletion last, it takes the photo's faces and corrections with it)."""
    shapes = {(c.label, c.body_index): Case(c.label, c.slots, (), c.body_index) for c in cases}
    return sorted(shapes.values(), key=lambda c: (c.label.startswith("DELETE"), c.label == "DELETE /photos/{photo_id}"))


def secrets_of(a: Library) -> set[str]:
    values = {a.owner, MARK}
    for ids in a.ids.values():
        values.update(ids)
    values.update(a.cursors.values())
    return values


def leaked(text: str, a: Library, sent: object = None) -> list[str]:
    """A's ids and markers in an answer, except those B sent itself (a search echoes its words)."""
    echoed = json.dumps(sent)
    return sorted(s for s in secrets_of(a) if s in text and s not in echoed)
