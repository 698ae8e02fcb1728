import pytest

from photo_organizer.local_stack.stack import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The local stack without background analysis: the module's tests run the batch analysis themselves."""
    with LocalStack(tmp_path_factory.mktemp("local-stack"), port=0, analyse=False) as running:
        yield running


@pytest.fixture(scope="module")
def serving_stack(tmp_path_factory):
    """The local stack as `photo-organizer serve` runs it: uploads are analysed in the background."""
    with LocalStack(tmp_path_factory.mktemp("serving-stack"), port=0) as running:
        yield running
