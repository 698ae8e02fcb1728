"""moto's whole-account mock with the environment every test under it needs: fake credentials, one region, no
profile or endpoint of the machine's own leaking in (a developer's AWS_PROFILE must never reach a real account)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def mocked_aws(monkeypatch: pytest.MonkeyPatch, region: str, *, unset: tuple[str, ...] = ()) -> Iterator[None]:
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", *unset):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield
