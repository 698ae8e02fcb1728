"""Refresh the offline advisory snapshot that the pip-audit gate (tests/gates/test_pip_audit.py) audits the lock
against. Run by hand on a machine that reaches the internet, then commit the file it writes:

    .venv/bin/python scripts/refresh_advisories.py                        # OSV's API (PyPA + GitHub advisories)
    .venv/bin/python scripts/refresh_advisories.py --advisory-database DIR # a checkout of pypa/advisory-database

Why a snapshot: CI and the development machines reach package registries only. pip-audit's default service asks
PyPI for each pinned version's record, which the registry here does not serve (404), so pip-audit skips every
package and still prints "No known vulnerabilities found"; OSV's API cannot be reached at all. The gate therefore
serves this file to pip-audit from loopback in OSV's API shape.

The snapshot holds every advisory, for every version, of each package named in requirements.lock (so a pin moved
onto an affected version fails without a refresh), trimmed to what matching needs, plus the list of names looked
up: a package added to the lock without a refresh fails the gate until this script is run again."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
SNAPSHOT = ROOT / "tests" / "gates" / "data" / "pypi-advisories.json"
OSV_API = "https://api.osv.dev/v1"  # the public OSV service (not a package registry)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_pins(lock: Path = LOCK) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def trim(record: dict, names: set[str]) -> dict:
    """What matching and reporting need: ids, summary, dates, and the affected entries of our packages."""
    affected = []
    for entry in record.get("affected", []):
        package = entry.get("package", {})
        if package.get("ecosystem") != "PyPI" or canonical(package.get("name", "")) not in names:
            continue
        ranges = [{"type": r["type"], "events": [{k: str(v) for k, v in e.items()} for e in r.get("events", [])]}
                  for r in entry.get("ranges", []) if r.get("type") == "ECOSYSTEM"]
        kept = {"package": {"name": canonical(package["name"]), "ecosystem": "PyPI"}, "ranges": ranges}
        if not ranges:  # only explicit versions (GIT-only ranges): keep the list, it is what OSV matches then
            kept["versions"] = [str(v) for v in entry.get("versions", [])]
        affected.append(kept)
    summary = record.get("summary") or (record.get("details") or "").strip().split("\n")[0][:300]
    trimmed = {"id": record["id"], "aliases": sorted(record.get("aliases", [])), "summary": summary,
               "affected": affected}
    for key in ("published", "modified", "withdrawn"):
        if record.get(key):
            trimmed[key] = str(record[key])
    return trimmed


def from_advisory_database(directory: Path, names: set[str]) -> tuple[list[dict], str, str]:
    import yaml

    records = []
    for folder in sorted((directory / "vulns").iterdir()):
        if canonical(folder.name) not in names:
            continue
        for path in sorted(folder.glob("*.yaml")):
            records.append(yaml.safe_load(path.read_text()))
    commit = subprocess.run(["git", "-C", str(directory), "log", "-1", "--format=%H %cs"], capture_output=True,
                            text=True).stdout.strip()
    return records, f"pypa/advisory-database {commit}".strip(), "CC-BY-4.0: PyPA advisory database (pypa/advisory-database)"


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def from_osv_api(names: set[str], api: str = OSV_API) -> tuple[list[dict], str, str]:
    """Every advisory id per package (querybatch pages with next_page_token), then each full record."""
    ids: set[str] = set()
    for name in sorted(names):
        token = None
        while True:
            query = {"package": {"name": name, "ecosystem": "PyPI"}, **({"page_token": token} if token else {})}
            result = _post(f"{api}/querybatch", {"queries": [query]})["results"][0]
            ids |= {v["id"] for v in result.get("vulns", [])}
            token = result.get("next_page_token")
            if not token:
                break
    records = []
    for vuln_id in sorted(ids):
        with urllib.request.urlopen(f"{api}/vulns/{vuln_id}", timeout=60) as response:
            records.append(json.load(response))
    return records, "OSV API (PyPA, GitHub and other PyPI advisories)", (
        "each record under its source's licence: PyPA advisory database and GitHub Advisory Database, CC-BY-4.0")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--advisory-database", type=Path, help="a checkout of pypa/advisory-database instead of OSV")
    parser.add_argument("--osv-api", default=OSV_API, help="base URL of an OSV API (default: %(default)s)")
    parser.add_argument("--lock", type=Path, default=LOCK)
    parser.add_argument("--out", type=Path, default=SNAPSHOT)
    args = parser.parse_args(argv)
    names = set(locked_pins(args.lock))
    if args.advisory_database:
        records, source, licence = from_advisory_database(args.advisory_database, names)
    else:
        records, source, licence = from_osv_api(names, args.osv_api)
    vulns = {}
    for record in records:
        trimmed = trim(record, names)
        if trimmed["affected"]:
            vulns[trimmed["id"]] = trimmed
    packages = {name: sorted(v["id"] for v in vulns.values()
                             if any(a["package"]["name"] == name for a in v["affected"])) for name in sorted(names)}
    snapshot = {
        "about": "Offline advisory data for tests/gates/test_pip_audit.py; written by scripts/refresh_advisories.py.",
        "source": source,
        "licence": licence,
        "refreshed": dt.date.today().isoformat(),
        "packages": packages,
        "vulns": dict(sorted(vulns.items())),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(snapshot, indent=1, sort_keys=False) + "\n")
    print(f"{len(vulns)} advisories for {len(names)} locked packages from {source} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
