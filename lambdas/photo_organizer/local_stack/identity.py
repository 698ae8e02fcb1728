"""Local users and tokens, made and checked the way Cognito and API Gateway's JWT authorizer do.

Tokens are RS256 JWTs signed with a key made on first run and published as a JWKS; verification checks the
signature against that JWKS (by `kid`), then `iss`, `aud`/`client_id`, `exp`, `nbf` and `iat`, exactly the
checks the HTTP API JWT authorizer documents. A forged, expired or foreign token is a 401.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from photo_organizer.errors import UnauthorizedError, ValidationError
from photo_organizer.local_stack.queue import SECURE_DELETE

CLIENT_ID = "photo-organizer-local"
TOKEN_TTL_SECONDS = 12 * 3600
SIGN_IN_LINK_TTL_SECONDS = 600
CLOCK_SKEW_SECONDS = 30


@dataclass(frozen=True)
class LocalUser:
    username: str
    sub: str


class LocalIdentityProvider:
    def __init__(self, data_dir: Path, *, issuer: str) -> None:
        self.issuer = issuer
        self._dir = data_dir / "identity"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._key = self._load_or_make_key()
        self._keyset = KeySet.import_key_set({"keys": [self._key.as_dict(private=False)]})
        self._db_path = self._dir / "users.sqlite3"
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, sub TEXT UNIQUE NOT NULL,"
                " password_hash TEXT NOT NULL, created_at REAL NOT NULL)"
            )
            # Sign-in links (`make demo` opens one): only a hash is kept, each works once and expires.
            db.execute(
                "CREATE TABLE IF NOT EXISTS sign_in_codes (code_hash TEXT PRIMARY KEY, username TEXT NOT NULL,"
                " expires_at REAL NOT NULL)"
            )

    # ---- keys ----------------------------------------------------------------------------------------

    def _load_or_make_key(self) -> RSAKey:
        path = self._dir / "signing-key.pem"
        if path.exists():
            kid = (self._dir / "signing-key.kid").read_text().strip()
            return RSAKey.import_key(path.read_bytes(), parameters={"kid": kid, "use": "sig", "alg": "RS256"})
        kid = uuid.uuid4().hex
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.as_pem(private=True))
        (self._dir / "signing-key.kid").write_text(kid)
        return key

    def jwks(self) -> dict:
        return {"keys": [self._key.as_dict(private=False)]}

    # ---- users ---------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._db_path, timeout=10)
        db.execute(SECURE_DELETE)  # a deleted user's row is zeroed, not left in the file's free space
        return db

    def add_user(self, username: str, password: str | None = None) -> tuple[LocalUser, str]:
        """Creates a user; returns it and its password (a generated one when none is given)."""
        username = username.strip().lower()
        if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValidationError("a username is 1-64 letters, digits, '.', '-' or '_'")
        password = password or secrets.token_urlsafe(12)
        if len(password) < 8:
            raise ValidationError("a password needs at least 8 characters")
        user = LocalUser(username=username, sub=str(uuid.uuid4()))
        with self._lock, self._connect() as db:
            try:
                db.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?)",
                    (user.username, user.sub, _hash_password(password), time.time()),
                )
            except sqlite3.IntegrityError as exc:
                raise ValidationError(f"user {username!r} exists already") from exc
        return user, password

    def get_user(self, username: str) -> LocalUser | None:
        with self._connect() as db:
            row = db.execute("SELECT username, sub FROM users WHERE username = ?", (username.strip().lower(),)).fetchone()
        return LocalUser(*row) if row else None

    def delete_user(self, username: str) -> bool:
        """Account erasure's last step: the user can no longer sign in (tokens already issued expire as usual)."""
        username = username.strip().lower()
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM sign_in_codes WHERE username = ?", (username,))
            return db.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount > 0

    def ensure_user(self, username: str) -> LocalUser:
        return self.get_user(username) or self.add_user(username)[0]

    def authenticate(self, username: str, password: str) -> LocalUser:
        with self._connect() as db:
            row = db.execute(
                "SELECT username, sub, password_hash FROM users WHERE username = ?", (username.strip().lower(),)
            ).fetchone()
        # Check a dummy hash for unknown users too: one scrypt either way, so timing does not reveal which names exist.
        stored = row[2] if row else _DUMMY_HASH
        if not _check_password(password, stored) or row is None:
            raise UnauthorizedError("wrong username or password")
        return LocalUser(row[0], row[1])

    # ---- sign-in links --------------------------------------------------------------------------------

    def issue_sign_in_code(
        self, user: LocalUser, *, ttl_seconds: int = SIGN_IN_LINK_TTL_SECONDS, now: float | None = None
    ) -> str:
        """A one-time code for a sign-in link, made by whoever runs the server (the CLI), never over the API.

        The app asks the person to confirm the account it names before redeeming it, so a link sent by someone else
        cannot silently sign a victim into the sender's library (login CSRF).
        """
        code = secrets.token_urlsafe(32)
        moment = now if now is not None else time.time()
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM sign_in_codes WHERE expires_at <= ?", (moment,))
            db.execute("INSERT INTO sign_in_codes VALUES (?, ?, ?)", (_code_hash(code), user.username, moment + ttl_seconds))
        return code

    def sign_in_code_user(self, code: str, *, now: float | None = None) -> LocalUser:
        """Whom a sign-in code would sign in, without using it up (the app shows it before asking to continue)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT u.username, u.sub FROM sign_in_codes c JOIN users u ON u.username = c.username"
                " WHERE c.code_hash = ? AND c.expires_at > ?",
                (_code_hash(code), now if now is not None else time.time()),
            ).fetchone()
        if row is None:
            raise UnauthorizedError("the sign-in link is unknown, used or expired")
        return LocalUser(*row)

    def redeem_sign_in_code(self, code: str, *, now: float | None = None) -> LocalUser:
        """Uses a sign-in code up: one delete decides, so two redemptions at once cannot both succeed."""
        with self._lock, self._connect() as db:
            row = db.execute(
                "DELETE FROM sign_in_codes WHERE code_hash = ? AND expires_at > ? RETURNING username",
                (_code_hash(code), now if now is not None else time.time()),
            ).fetchone()
        user = self.get_user(row[0]) if row else None
        if user is None:
            raise UnauthorizedError("the sign-in link is unknown, used or expired")
        return user

    # ---- tokens --------------------------------------------------------------------------------------

    def issue_token(self, user: LocalUser, *, ttl_seconds: int = TOKEN_TTL_SECONDS, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "sub": user.sub,
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "token_use": "id",
            "cognito:username": user.username,
            "auth_time": issued,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode({"alg": "RS256", "kid": self._key.kid}, claims, self._key)

    def verify(self, token: str, *, now: float | None = None) -> dict:
        try:
            decoded = jwt.decode(token, self._keyset, algorithms=["RS256"])
        except (JoseError, ValueError) as exc:
            raise UnauthorizedError("the token is malformed or its signature is invalid") from exc
        claims = decoded.claims
        moment = int(now if now is not None else time.time())
        if claims.get("iss") != self.issuer:
            raise UnauthorizedError("the token was issued by someone else")
        audience = claims.get("aud") if "aud" in claims else claims.get("client_id")
        audiences = audience if isinstance(audience, list) else [audience]
        if CLIENT_ID not in audiences:
            raise UnauthorizedError("the token is for another client")
        # Types checked before use: a claim of the wrong type is a refused token, never a server error.
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise UnauthorizedError("the token has no subject")
        times = {name: claims.get(name) for name in ("exp", "iat", "nbf")}
        if any(times[name] is None for name in ("exp", "iat")) or not all(
            value is None or _is_numeric_date(value) for value in times.values()
        ):
            raise UnauthorizedError("the token's times are missing or not numbers")
        if times["exp"] + CLOCK_SKEW_SECONDS < moment:
            raise UnauthorizedError("the token has expired")
        if (times["nbf"] if times["nbf"] is not None else times["iat"]) - CLOCK_SKEW_SECONDS > moment:
            raise UnauthorizedError("the token is not valid yet")
        return dict(claims)


@dataclass(frozen=True)
class LocalLogins:
    """The local sign-ins as account erasure's Logins: DELETE /account removes the caller's own user (the name
    from the verified token) once nothing blocking remains, as the cloud deletes the Cognito user."""

    identity: LocalIdentityProvider

    def delete(self, username: str) -> bool:
        return self.identity.delete_user(username)


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _is_numeric_date(value: object) -> bool:
    """RFC 7519's NumericDate: seconds as a JSON number (never a string, a list or a boolean)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _hash_password(password: str) -> str:
    """One scrypt; `_check_password` costs exactly one too."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return json.dumps({"salt": salt.hex(), "scrypt": digest.hex()})


def _check_password(password: str, stored: str) -> bool:
    record = json.loads(stored)
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(record["salt"]), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), record["scrypt"])


# Made once, outside any sign-in: an unknown user's attempt must cost one scrypt, like a known user's.
_DUMMY_HASH = json.dumps({"salt": "00" * 16, "scrypt": "00" * 64})
