"""PO_BACKGROUND_NICENESS: how much lower the local stack's ingest workers run than the server (os.nice, 0-19)."""

from __future__ import annotations

import pytest

from photo_organizer.errors import ConfigurationError
from photo_organizer.settings import Settings


def test_background_work_runs_lower_than_the_server_unless_told_otherwise():
    assert Settings.from_env({}).background_niceness == 5
    assert Settings.from_env({"PO_BACKGROUND_NICENESS": "0"}).background_niceness == 0
    assert Settings.from_env({"PO_BACKGROUND_NICENESS": "19"}).background_niceness == 19


@pytest.mark.parametrize("value", ["-1", "20", "low"])
def test_a_niceness_os_nice_cannot_apply_is_refused(value):
    with pytest.raises(ConfigurationError):
        Settings.from_env({"PO_BACKGROUND_NICENESS": value})
