"""pip-audit over requirements.lock, offline: pip-audit's own OSV service, pointed at a loopback API that answers from
the committed advisory snapshot (tests/gates/data/pypi-advisories.json, refreshed by hand with
scripts/refresh_advisories.py). Nothing here needs the network, and a known-vulnerable pin in the data fails.

Why not pip-audit's default: here PyPI serves no per-version records (404), so pip-audit skips every package and
still prints "No known vulnerabilities found" with exit 0 - a gate that never fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gates.osv_offline import AdvisorySnapshot, affects, canonical, osv_api_on_loopback

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PIP_AUDIT = Path(sys.executable).with_name("pip-audit")

# Advisories in the snapshot that affect a locked pin and are accepted for now: {(package, id): reason}.
ACCEPTED: dict[tuple[str, str], str] = {}

# A pin the snapshot knows to be affected (Pillow 10.0.0: PYSEC-2023-175, CVE-2023-44271, fixed in 10.0.1).
KNOWN_VULNERABLE = ("pillow", "10.0.0", "PYSEC-2023-175")


def _pins(lock: Path) -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from refresh_advisories import locked_pins
    finally:
        sys.path.pop(0)
    return locked_pins(lock)


@pytest.fixture(scope="module")
def snapshot() -> AdvisorySnapshot:
    return AdvisorySnapshot.load()


def _audit(lock: Path, snapshot: AdvisorySnapshot, tmp_path: Path) -> tuple[int, dict, list]:
    if not PIP_AUDIT.exists():
        pytest.fail(f"pip-audit is not installed beside {sys.executable} (it is in requirements.lock)")
    with osv_api_on_loopback(snapshot) as (url, queries):
        result = subprocess.run(
            [str(PIP_AUDIT), "-r", str(lock), "--no-deps", "--disable-pip", "--vulnerability-service", "osv",
             "--osv-url", url, "--cache-dir", str(tmp_path / "cache"), "--format", "json",
             "--progress-spinner", "off", "--timeout", "30"],
            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    return result.returncode, json.loads(result.stdout), queries


def _findings(report: dict) -> list[tuple[str, str, str]]:
    return sorted((canonical(d["name"]), d["version"], v["id"])
                  for d in report["dependencies"] for v in d.get("vulns", []))


def test_every_locked_pin_is_audited_and_none_is_known_vulnerable(snapshot, tmp_path):
    pins = _pins(LOCK)
    code, report, queries = _audit(LOCK, snapshot, tmp_path)
    audited = {canonical(d["name"]): d["version"] for d in report["dependencies"] if "skip_reason" not in d}
    assert audited == pins, "pip-audit skipped pins: " + str(sorted(set(pins) - set(audited)))
    assert len(queries) == len(pins)
    unaccepted = [f for f in _findings(report) if (f[0], f[2]) not in ACCEPTED]
    assert unaccepted == [], f"known-vulnerable pins in requirements.lock: {unaccepted}"
    assert code == (1 if _findings(report) else 0)
    print(f"\npip-audit: {len(pins)} pins audited against {len(snapshot.data['vulns'])} advisories "
          f"({snapshot.data['source']}, refreshed {snapshot.data['refreshed']}): {len(_findings(report))} found")


def test_a_known_vulnerable_pin_fails_the_audit(snapshot, tmp_path):
    name, version, advisory = KNOWN_VULNERABLE
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"requests==2.34.2\n    # via test\n{name}=={version}\n")
    code, report, _ = _audit(lock, snapshot, tmp_path)
    assert code == 1
    assert (name, version, advisory) in _findings(report)
    assert not [f for f in _findings(report) if f[0] == "requests"]


def test_every_locked_package_was_looked_up_when_the_snapshot_was_refreshed(snapshot):
    missing = sorted(set(_pins(LOCK)) - set(snapshot.data["packages"]))
    assert missing == [], (f"{missing} are in requirements.lock but were not looked up: run "
                           "scripts/refresh_advisories.py and commit tests/gates/data/pypi-advisories.json")


def test_accepted_advisories_still_apply_and_give_reasons(snapshot):
    pins = _pins(LOCK)
    for (name, advisory), reason in ACCEPTED.items():
        assert len(reason) >= 20, (name, advisory)
        assert affects(snapshot.data["vulns"][advisory], name, pins[name]), f"{advisory} no longer applies: drop it"


def test_the_refresh_scripts_osv_route_rebuilds_the_snapshot(snapshot, tmp_path):
    """scripts/refresh_advisories.py against an OSV-shaped API (the loopback one, over the committed snapshot): what
    it writes holds the same advisories for the same packages, so a refresh by hand can only change the data."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import refresh_advisories
    finally:
        sys.path.pop(0)
    out = tmp_path / "advisories.json"
    with osv_api_on_loopback(snapshot) as (url, _):
        assert refresh_advisories.main(["--osv-api", url.removesuffix("/query"), "--out", str(out)]) == 0
    rebuilt = json.loads(out.read_text())
    assert rebuilt["packages"] == snapshot.data["packages"]
    assert rebuilt["vulns"] == snapshot.data["vulns"]
    assert rebuilt["source"].startswith("OSV API")


@pytest.mark.parametrize(("events", "version", "expected"), [
    ([{"introduced": "0"}, {"fixed": "2.3.2"}], "2.3.1", True),
    ([{"introduced": "0"}, {"fixed": "2.3.2"}], "2.3.2", False),
    ([{"introduced": "2.5"}, {"fixed": "2.5.2"}, {"introduced": "0"}, {"fixed": "2.3.2"}], "2.5.1", True),
    ([{"introduced": "2.5"}, {"fixed": "2.5.2"}, {"introduced": "0"}, {"fixed": "2.3.2"}], "2.4", False),
    ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4", True),
    ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4.1", False),
    ([{"introduced": "3.0"}], "9.9", True),
    ([{"introduced": "3.0"}], "2.9", False),
])
def test_osv_range_matching(events, version, expected):
    record = {"affected": [{"package": {"name": "Some_Package", "ecosystem": "PyPI"},
                            "ranges": [{"type": "ECOSYSTEM", "events": events}]}]}
    assert affects(record, "some-package", version) is expected


def test_explicit_versions_match_and_other_ecosystems_do_not():
    record = {"affected": [{"package": {"name": "pkg", "ecosystem": "PyPI"}, "versions": ["1.0b1"]},
                           {"package": {"name": "pkg", "ecosystem": "npm"},
                            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}
    assert affects(record, "pkg", "1.0b1")
    assert not affects(record, "pkg", "1.0")
