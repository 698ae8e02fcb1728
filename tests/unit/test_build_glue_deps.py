"""scripts/build_glue_deps.py's rules, without the network: what Glue 5.0 can install, and that resolution holds
every module Glue provides at Glue's version (no numpy swap) unless the script says why."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_glue_deps.py"


@pytest.fixture(scope="module")
def deps():
    spec = importlib.util.spec_from_file_location("build_glue_deps", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("wheel", "installable"), [
    ("pillow-13.0.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", True),
    ("timezonefinder-8.1.0-cp39-abi3-manylinux_2_5_x86_64.manylinux1_x86_64.whl", True),
    ("pydantic-2.14.4-py3-none-any.whl", True),
    ("numpy-2.4.6-cp311-cp311-manylinux_2_35_x86_64.whl", False),  # newer glibc than AL2023's 2.34
    ("pillow-13.0.0-cp312-cp312-manylinux_2_28_x86_64.whl", False),  # another Python
    ("pillow-13.0.0-cp311-cp311-manylinux_2_28_aarch64.whl", False),  # Glue workers are x86_64
    ("pillow-13.0.0-cp311-cp311-musllinux_1_2_x86_64.whl", False),
])
def test_only_wheels_glue_5_can_install_pass(deps, wheel, installable):
    assert deps.glue_installable(wheel) is installable


def test_provided_list_is_glue_5_documented_set(deps):
    provided = deps.provided_modules()
    assert len(provided) == 44
    assert (provided["numpy"], provided["boto3"], provided["pandas"], provided["pyarrow"]) == (
        "1.26.4", "1.34.131", "2.2.2", "17.0.0")
    assert "pydantic" not in provided and "scipy" not in provided and "typing-extensions" not in provided


def test_constraints_keep_every_provided_module_at_glue_version_but_the_named_upgrades(deps):
    provided = deps.provided_modules()
    pins = deps.constraints(deps.read_pins(deps.LOCK_FILE), provided)
    swapped = {name for name, version in provided.items() if pins[name] != version}
    assert swapped == set(deps.UPGRADES) == {"pillow"}
    assert pins["numpy"] == "1.26.4"  # the lock's numpy 2.x never reaches Glue
    assert pins["timezonefinder"] == deps.GLUE_PINS["timezonefinder"][0] == "8.1.0"


def test_requirements_drop_imagehash_which_no_job_imports(deps):
    pins = deps.constraints(deps.read_pins(deps.LOCK_FILE), deps.provided_modules())
    wanted = deps.requirements(pins)
    assert [r.split("==")[0] for r in wanted] == list(deps.GLUE_REQUIREMENTS)
    assert not any(r.startswith(("imagehash", "pywavelets", "numpy")) for r in wanted)
