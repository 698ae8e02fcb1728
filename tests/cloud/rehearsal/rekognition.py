"""The Rekognition stand-in of the Glue tests (tests/glue/rekognition_standin.py), for the rehearsal's functions:
moto 5.2.5 implements no collection call (DeleteCollection answers HTTP 500 "not implemented"), so without it the
API's consent withdrawal and account erasure would fail on the harness, not on the product. The stand-in speaks the
service's wire protocol and answers a missing collection with ResourceNotFoundException, as Rekognition does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

STANDIN = Path(__file__).resolve().parents[2] / "glue" / "rekognition_standin.py"


def rekognition_standin():
    """A new, not yet started RekognitionStandin (one module object shared with tests/glue's own import of it)."""
    module = sys.modules.get("rekognition_standin")
    if module is None:
        spec = importlib.util.spec_from_file_location("rekognition_standin", STANDIN)
        module = sys.modules["rekognition_standin"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.RekognitionStandin()
