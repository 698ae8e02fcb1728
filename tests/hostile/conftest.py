import pytest

from photo_organizer.local_stack.stack import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The local stack without background analysis (as tests/e2e's fixture of the same name)."""
    with LocalStack(tmp_path_factory.mktemp("hostile-stack"), port=0, analyse=False) as running:
        yield running
