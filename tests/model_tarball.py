"""A SageMaker training job's model.tar.gz as the retraining's steps read it: one model.json inside."""

from __future__ import annotations

import io
import json
import tarfile


def model_tarball(document: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = json.dumps(document).encode()
        info = tarfile.TarInfo("model.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
