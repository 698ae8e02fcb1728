"""Local tokens are checked the way API Gateway's JWT authorizer checks Cognito's."""

import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from photo_organizer.errors import UnauthorizedError, ValidationError
from photo_organizer.local_stack.identity import CLIENT_ID, LocalIdentityProvider

ISSUER = "http://127.0.0.1:8787/auth"


@pytest.fixture
def identity(tmp_path):
    return LocalIdentityProvider(tmp_path, issuer=ISSUER)


def test_issued_token_verifies_with_cognito_shaped_claims(identity):
    user, _ = identity.add_user("ana", "a long password")
    claims = identity.verify(identity.issue_token(user))
    assert claims["sub"] == user.sub and claims["aud"] == CLIENT_ID and claims["iss"] == ISSUER
    assert claims["token_use"] == "id" and claims["cognito:username"] == "ana"


def test_signing_key_and_users_persist_across_restarts(identity, tmp_path):
    user, _ = identity.add_user("ana", "a long password")
    token = identity.issue_token(user)
    again = LocalIdentityProvider(tmp_path, issuer=ISSUER)
    assert again.verify(token)["sub"] == user.sub
    assert again.jwks() == identity.jwks() and "d" not in again.jwks()["keys"][0]


def test_token_signed_by_another_key_is_refused(identity):
    user, _ = identity.add_user("ana", "a long password")
    foreign = RSAKey.generate_key(2048, parameters={"kid": identity.jwks()["keys"][0]["kid"]}, private=True)
    now = int(time.time())
    claims = {"sub": user.sub, "iss": ISSUER, "aud": CLIENT_ID, "iat": now, "exp": now + 60}
    with pytest.raises(UnauthorizedError):
        identity.verify(jwt.encode({"alg": "RS256", "kid": foreign.kid}, claims, foreign))


@pytest.mark.parametrize(
    ("issuer", "ttl", "shift"),
    [("http://elsewhere/auth", 60, 0), (ISSUER, 60, -3600), (ISSUER, 60, 3600)],
    ids=["foreign-issuer", "expired", "not-yet-valid"],
)
def test_wrong_issuer_expired_and_future_tokens_are_refused(tmp_path, issuer, ttl, shift):
    issuing = LocalIdentityProvider(tmp_path, issuer=issuer)
    user, _ = issuing.add_user("ana", "a long password")
    token = issuing.issue_token(user, ttl_seconds=ttl, now=time.time() + shift)
    with pytest.raises(UnauthorizedError):
        LocalIdentityProvider(tmp_path, issuer=ISSUER).verify(token)


def test_unsigned_alg_none_token_is_refused(identity):
    user, _ = identity.add_user("ana", "a long password")
    header, payload, _ = identity.issue_token(user).split(".")
    with pytest.raises(UnauthorizedError):
        identity.verify(f"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")


def test_password_login_and_wrong_password(identity):
    identity.add_user("ana", "a long password")
    assert identity.authenticate("ANA", "a long password").username == "ana"
    with pytest.raises(UnauthorizedError):
        identity.authenticate("ana", "wrong password")
    with pytest.raises(UnauthorizedError):
        identity.authenticate("nobody", "a long password")
    with pytest.raises(ValidationError):
        identity.add_user("ana", "a long password")
