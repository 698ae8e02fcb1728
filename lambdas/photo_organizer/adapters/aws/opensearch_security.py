"""Fine-grained access control of the OpenSearch domain: the roles and role mappings that let the indexer write and
the API read the photo index, put through the security plugin's REST API with SigV4-signed requests.

The domain's master user is a dedicated IAM role used only by the deploy-time custom resource that calls this
adapter (stacks/search.py). Every other role reaches the domain through the account principal of the domain's
access policy plus its own IAM policy, and is then held by FGAC to the OpenSearch role it is mapped to here:

- writer (the stream indexer): bulk writes, searches, templates, index creation, settings, refresh and alias swaps
  on the photo alias and its versioned indices (`{alias}`, `{alias}-v*`) - what OpenSearchIndex does;
- reader (the API): searches, counts and multi-searches on the same indices, nothing else.

The mapping names IAM role ARNs as backend roles: FGAC maps a request signed with a role's session credentials by
the role's ARN. Requests are plain HTTPS (urllib) signed with botocore's SigV4 signer, so tests can check the
exact request (path, body, signature) against golden files without a cluster.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from photo_organizer.errors import ConfigurationError, PermanentError, PhotoOrganizerError, StorageUnavailableError

SECURITY_API = "/_plugins/_security/api"
ACCESS_KINDS = ("writer", "reader")
REQUEST_TIMEOUT_SECONDS = 10

# Static action groups of the security plugin (opensearch-project/security static_action_groups.yml): cluster-level
# ones cover the multi-document calls (_bulk, _msearch: cluster_composite_ops[_ro]), alias lookups and index
# templates (cluster_manage_index_templates); index-level ones are scoped to the photo alias and its versioned
# indices. OpenSearchIndex's calls -> groups: bulk, delete_by_query -> crud; search, count -> read; msearch,
# exists_alias, get_alias -> cluster_composite_ops_ro; put_index_template -> cluster_manage_index_templates;
# create, exists, put_settings, refresh -> create_index/manage; update_aliases -> manage_aliases.
_CLUSTER_PERMISSIONS = {
    "writer": ["cluster_composite_ops", "cluster_monitor", "cluster_manage_index_templates"],
    "reader": ["cluster_composite_ops_ro"],
}
_INDEX_ACTIONS = {
    # crud: documents (bulk, delete_by_query); create_index + manage: versioned indices, settings, refresh;
    # manage_aliases: the alias swap of a reindex.
    "writer": ["crud", "create_index", "manage", "manage_aliases"],
    "reader": ["read"],
}


def role_name(alias: str, access: str) -> str:
    _check_access(access)
    return f"photo_organizer_{alias}_{access}"


def role_body(alias: str, access: str) -> dict[str, Any]:
    _check_access(access)
    return {
        "description": f"Photo Organizer {access} of the '{alias}' search index (managed by the deployment)",
        "cluster_permissions": list(_CLUSTER_PERMISSIONS[access]),
        "index_permissions": [{"index_patterns": [alias, f"{alias}-v*"], "allowed_actions": list(_INDEX_ACTIONS[access])}],
        "tenant_permissions": [],
    }


def role_mapping_body(alias: str, access: str, backend_roles: Sequence[str]) -> dict[str, Any]:
    _check_access(access)
    if not backend_roles or any(not r.startswith("arn:") for r in backend_roles):
        raise ConfigurationError(f"role mapping {access}: backend roles must be IAM role ARNs, got {list(backend_roles)}")
    return {
        "description": f"IAM roles granted Photo Organizer {access} access (managed by the deployment)",
        "backend_roles": sorted(backend_roles),
        "hosts": [],
        "users": [],
    }


def _check_access(access: str) -> None:
    if access not in ACCESS_KINDS:
        raise ConfigurationError(f"access must be one of {ACCESS_KINDS}, got {access!r}")


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes


# (method, url, headers, body) -> response; the default sends it with urllib.
Transport = Callable[[str, str, dict[str, str], bytes], HttpResponse]


def urllib_transport(method: str, url: str, headers: dict[str, str], body: bytes) -> HttpResponse:
    request = urllib.request.Request(url, data=body or None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # noqa: S310 - https only
            return HttpResponse(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return HttpResponse(exc.code, exc.read())


class SecurityApiError(PhotoOrganizerError):
    pass


class OpenSearchSecurity:
    """The security plugin's role and role-mapping API of one domain, over SigV4-signed HTTPS."""

    def __init__(
        self,
        endpoint: str,
        *,
        region: str,
        credentials: Any,
        service: str = "es",
        transport: Transport = urllib_transport,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        budget_seconds: float = 240.0,
    ) -> None:
        if not endpoint:
            raise ConfigurationError("the OpenSearch endpoint is not set")
        if service != "es":
            raise ConfigurationError("fine-grained access control roles exist on a managed domain (es) only")
        url = endpoint if "://" in endpoint else f"https://{endpoint}"
        if not url.startswith("https://"):
            raise ConfigurationError("the OpenSearch endpoint must be https")
        self._base = url.rstrip("/")
        self._region = region
        self._credentials = credentials
        self._service = service
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        # One deadline for everything this instance sends: the custom resource must answer CloudFormation before
        # its function times out, or the stack waits an hour.
        self._deadline = clock() + budget_seconds

    # ---- the use case: grant and revoke one access kind ----------------------------------------------------

    def grant(self, alias: str, access: str, backend_roles: Sequence[str]) -> str:
        """Creates or replaces the role and its mapping (idempotent); returns the role's name."""
        name = role_name(alias, access)
        mapping = role_mapping_body(alias, access, backend_roles)
        self._send("PUT", f"{SECURITY_API}/roles/{quote(name, safe='')}", role_body(alias, access))
        self._send("PUT", f"{SECURITY_API}/rolesmapping/{quote(name, safe='')}", mapping)
        return name

    def revoke(self, name: str) -> None:
        """Removes the mapping, then the role; either being gone already is fine."""
        self._send("DELETE", f"{SECURITY_API}/rolesmapping/{quote(name, safe='')}", None, missing_ok=True)
        self._send("DELETE", f"{SECURITY_API}/roles/{quote(name, safe='')}", None, missing_ok=True)

    # ---- HTTP ---------------------------------------------------------------------------------------------

    def signed_request(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[str, dict[str, str], bytes]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = AWSRequest(method=method, url=f"{self._base}{path}", data=payload, headers=headers)
        # OpenSearch checks the payload hash header when present; sending it keeps the body bound to the signature.
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(payload).hexdigest()
        frozen = self._credentials.get_frozen_credentials() if hasattr(self._credentials, "get_frozen_credentials") \
            else self._credentials
        SigV4Auth(frozen, self._service, self._region).add_auth(request)
        return request.url, dict(request.headers.items()), payload

    def _send(self, method: str, path: str, body: dict[str, Any] | None, *, missing_ok: bool = False) -> None:
        delay = 2.0
        while True:
            url, headers, payload = self.signed_request(method, path, body)  # re-signed: the date moves on
            try:
                response = self._transport(method, url, headers, payload)
            except OSError as exc:  # DNS, TLS, timeouts: the domain may still be coming up
                error: PhotoOrganizerError = StorageUnavailableError(f"{method} {path}: {exc}")
            else:
                if 200 <= response.status < 300 or (missing_ok and response.status == 404):
                    return
                error = _translate(method, path, response)
            # Right after the domain turns active, the security index may still be initialising (503) and a new
            # master role may not have propagated (401/403): retry those while the budget lasts.
            if not _worth_retrying(error) or self._clock() + delay + REQUEST_TIMEOUT_SECONDS > self._deadline:
                raise error
            self._sleep(delay)
            delay = min(delay * 2, 30.0)


def _translate(method: str, path: str, response: HttpResponse) -> PhotoOrganizerError:
    text = response.body[:500].decode("utf-8", "replace")
    message = f"{method} {path}: HTTP {response.status} {text}"
    if response.status == 429 or response.status >= 500:
        return StorageUnavailableError(message)
    if response.status in (401, 403):
        return _NotYetAuthorizedError(message)
    return PermanentError(message)


class _NotYetAuthorizedError(ConfigurationError):
    """401/403: a configuration error if it lasts, but usually the new master role still propagating."""


def _worth_retrying(error: PhotoOrganizerError) -> bool:
    return isinstance(error, (StorageUnavailableError, _NotYetAuthorizedError))


def session_credentials() -> Any:
    """The function's own credentials (the master role of the domain), refreshed by botocore as they expire."""
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise ConfigurationError("no AWS credentials for the OpenSearch security API")
    return credentials


# ---- CloudFormation custom resource responses ----------------------------------------------------------------


def send_custom_resource_response(response_url: str, response: dict[str, Any],
                                  transport: Transport = urllib_transport) -> None:
    """PUTs the outcome to the presigned S3 URL CloudFormation gave; an empty content type, as S3 signed it."""
    body = json.dumps(response).encode()
    result = transport("PUT", response_url, {"Content-Type": "", "Content-Length": str(len(body))}, body)
    if not 200 <= result.status < 300:
        raise SecurityApiError(f"CloudFormation response refused: HTTP {result.status}")
