"""Sign-in throttling and constant sign-in work (security review, issue 13)."""

from __future__ import annotations

import hashlib

import pytest

from photo_organizer.errors import UnauthorizedError
from photo_organizer.local_stack import identity as identity_module
from photo_organizer.local_stack.identity import LocalIdentityProvider
from photo_organizer.local_stack.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_in_a_minute_lock_the_name_with_a_doubling_back_off():
    clock = Clock()
    throttle = LoginThrottle(clock=clock, base_lock=30)
    for _ in range(4):
        throttle.failed("Ana", "10.0.0.1")
        assert throttle.retry_after("ana", "10.0.0.2") == 0
    throttle.failed("ana", "10.0.0.1")
    assert throttle.retry_after("ana", "10.0.0.2") == 30  # the name is locked, from any client
    assert throttle.retry_after("bob", "10.0.0.3") == 0
    clock.now += 31
    assert throttle.retry_after("ana", "10.0.0.2") == 0
    for _ in range(5):
        throttle.failed("ana", "10.0.0.1")
    assert throttle.retry_after("ana", "10.0.0.2") == 60


def test_failures_spread_over_more_than_the_window_do_not_lock():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(10):
        throttle.failed("ana", "10.0.0.1")
        clock.now += 20
    assert throttle.retry_after("ana", "10.0.0.1") == 0


def test_one_client_guessing_many_names_is_locked_too():
    throttle = LoginThrottle(clock=Clock(), client_threshold=20)
    for n in range(20):
        throttle.failed(f"user{n}", "10.0.0.9")
    assert throttle.retry_after("someone-new", "10.0.0.9") > 0
    assert throttle.retry_after("someone-new", "10.0.0.8") == 0


def test_success_clears_the_record():
    throttle = LoginThrottle(clock=Clock())
    for _ in range(4):
        throttle.failed("ana", "10.0.0.1")
    throttle.succeeded("ana", "10.0.0.1")
    throttle.failed("ana", "10.0.0.1")
    assert throttle.retry_after("ana", "10.0.0.1") == 0


@pytest.fixture
def scrypt_calls(monkeypatch):
    calls = []
    real = hashlib.scrypt

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(identity_module.hashlib, "scrypt", counting)
    return calls


def test_an_unknown_user_costs_one_scrypt_like_a_known_one(tmp_path, scrypt_calls):
    identity = LocalIdentityProvider(tmp_path, issuer="http://127.0.0.1:1/auth")
    identity.add_user("ana", "a long password")
    scrypt_calls.clear()
    with pytest.raises(UnauthorizedError):
        identity.authenticate("ana", "wrong password")
    known = len(scrypt_calls)
    scrypt_calls.clear()
    with pytest.raises(UnauthorizedError):
        identity.authenticate("nobody", "wrong password")
    assert known == len(scrypt_calls) == 1
