"""The shipped bundle is what Lambda can load (every compiled module an aarch64 build for CPython 3.12), and the
rehearsal's host bundle is the same bundle (same distributions, same domain files) built for this machine."""

from __future__ import annotations

import json
import platform
import re
import sys

import pytest

from .rehearsal.bundles import SHIPPED_BUNDLE, build_script, ensure_host_bundle

pytestmark = pytest.mark.xdist_group("cloud")

EXPECTED_EXTENSIONS = ("PIL/_imaging.", "pydantic_core/_pydantic_core.", "numpy/_core/_multiarray_umath.",
                       "_pillow_heif.")


def _shipped(*, current: bool = False):
    stamp = SHIPPED_BUNDLE / ".build-stamp.json"
    if not stamp.exists():
        pytest.skip(f"{SHIPPED_BUNDLE.name}/ is not built here: `make lambda-build` (make test does it) builds the "
                    "shipped arm64 bundle that this test checks")
    if current:
        script = build_script()
        requirements = [script._pinned(r, script.read_lock()) for r in script.LAMBDA_REQUIREMENTS]
        if json.loads(stamp.read_text())["digest"] != script.fingerprint(requirements):
            pytest.skip(f"{SHIPPED_BUNDLE.name}/ is older than the sources: `make lambda-build` rebuilds it")
    return SHIPPED_BUNDLE


def test_every_compiled_module_of_the_shipped_bundle_is_an_aarch64_build_for_cpython_312():
    script = build_script()
    modules = script.check_architecture(_shipped(), script.LAMBDA_ELF_MACHINE, script.LAMBDA_CPYTHON_TAG)
    paths = [m.path for m in modules]
    assert all(any(p.startswith(e) for p in paths) for e in EXPECTED_EXTENSIONS), paths
    wrong = [f"{m.path}: {m.problem}" for m in modules if m.problem]
    assert wrong == [], "modules Lambda (arm64, python3.12) cannot load:\n" + "\n".join(wrong)


def test_the_host_bundle_holds_the_same_distributions_and_domain_files_as_the_shipped_one():
    shipped, host = _shipped(current=True), ensure_host_bundle()
    assert sorted(p.name for p in host.glob("*.dist-info")) == sorted(p.name for p in shipped.glob("*.dist-info"))
    for package in ("photo_organizer", "photo_organizer_models"):
        files = {p.relative_to(shipped).as_posix(): p.read_bytes() for p in (shipped / package).rglob("*") if p.is_file()}
        assert files, package
        assert {p.relative_to(host).as_posix(): p.read_bytes() for p in (host / package).rglob("*") if p.is_file()} \
            == files, f"{package} differs between the shipped and the host bundle"


def test_the_host_bundle_is_built_for_this_machine():
    script = build_script()
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine().lower()]
    modules = script.check_architecture(ensure_host_bundle(), machine, f"{sys.version_info.major}{sys.version_info.minor}")
    assert any(m.path.startswith("pydantic_core/") for m in modules)
    assert [m for m in modules if m.problem] == []


def test_an_x86_module_in_an_arm64_bundle_is_named(tmp_path):
    script = build_script()
    elf = bytearray(64)
    elf[:4], elf[4], elf[5] = b"\x7fELF", 2, 1  # 64-bit, little-endian
    (tmp_path / "pkg").mkdir()
    elf[18:20] = (62).to_bytes(2, "little")  # EM_X86_64
    (tmp_path / "pkg" / "_fast.cpython-312-x86_64-linux-gnu.so").write_bytes(bytes(elf))
    elf[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64
    (tmp_path / "pkg" / "_ok.cpython-311-aarch64-linux-gnu.so").write_bytes(bytes(elf))
    (tmp_path / "pkg" / "libz.so.1").write_bytes(bytes(elf))
    found = {m.path: m.problem for m in script.check_architecture(tmp_path, "aarch64", "312")}
    assert found == {
        "pkg/_fast.cpython-312-x86_64-linux-gnu.so": "built for x86_64, not aarch64",
        "pkg/_ok.cpython-311-aarch64-linux-gnu.so": "extension for CPython 311, not 312",
        "pkg/libz.so.1": "",
    }


def test_the_host_build_has_its_own_digest_and_the_shipped_one_is_unchanged_by_the_option(tmp_path):
    script = build_script()
    requirements = [script._pinned(r, script.read_lock()) for r in script.LAMBDA_REQUIREMENTS]
    shipped = script.fingerprint(requirements)
    assert script.fingerprint(requirements, target="lambda") == shipped
    assert script.fingerprint(requirements, target="host") != shipped
    assert re.fullmatch(r"cp3\d+-.+", script.host_tag())
