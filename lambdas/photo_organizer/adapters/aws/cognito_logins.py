"""Logins in the Cognito user pool: AdminDeleteUser, the one call account erasure makes (the API role may make it
on this pool only; IAM has no condition key for the target user, so the username always comes from the caller's
verified token: handlers/api.py current_login)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient, client_factory
from photo_organizer.adapters.aws.errors import error_code, translate


class CognitoLogins:
    def __init__(self, user_pool_id: str, *, region: str | None = None,
                 client_factory_: Callable[[], Any] | None = None) -> None:
        self._pool = user_pool_id
        self._client = LazyClient(client_factory_ or client_factory("cognito-idp", region=region))

    def delete(self, username: str) -> bool:
        try:
            self._client().admin_delete_user(UserPoolId=self._pool, Username=username)
        except ClientError as exc:
            if error_code(exc) == "UserNotFoundException":
                return False
            raise translate(exc, what="delete the sign-in") from exc
        except BotoCoreError as exc:
            raise translate(exc, what="delete the sign-in") from exc
        return True
