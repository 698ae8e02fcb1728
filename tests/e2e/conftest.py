import pytest

from photo_organizer.local_stack.stack import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("local-stack"), port=0) as running:
        yield running
