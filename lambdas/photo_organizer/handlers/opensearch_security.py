"""CloudFormation custom resource (Custom::OpenSearchAccess): maps IAM roles to OpenSearch roles of the domain's
fine-grained access control at deploy time, and creates the photo index before the first stream record.

ResourceProperties:
  Endpoint       https://<domain endpoint>
  Alias          the photo alias ("photos")
  Access         "writer" (the indexer, in the search stack) | "reader" (the API role, in the API stack)
  BackendRoles   [IAM role ARN, ...]
  IndexVersion   optional: create `{Alias}-v{IndexVersion}` behind the alias when missing (writer only)

Create/Update: PUT the role and its mapping (idempotent), then the index if asked. The PhysicalResourceId is the
OpenSearch role's name, so an Update that renames it makes CloudFormation delete the old one. Delete: remove the
mapping and the role; a failure there is logged and reported as success, so a failed or destroyed stack never
sticks in DELETE_FAILED (the mappings die with the domain anyway). Every path answers CloudFormation: a custom
resource that never answers holds the stack for an hour.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from photo_organizer import bootstrap

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

# Time kept back from the function's timeout: for the CloudFormation response itself, and for creating the index
# after the role mappings (four requests with the OpenSearch client's own timeouts and retries).
RESPONSE_RESERVE_SECONDS = 20.0
INDEX_RESERVE_SECONDS = 60.0
NOT_CREATED_PREFIX = "not-created:"


@dataclass(frozen=True)
class AccessRequest:
    request_type: str  # Create | Update | Delete
    endpoint: str
    alias: str
    access: str
    backend_roles: tuple[str, ...]
    index_version: int | None
    physical_id: str | None

    @classmethod
    def parse(cls, event: dict[str, Any]) -> AccessRequest:
        props = event.get("ResourceProperties") or {}
        request_type = event.get("RequestType", "")
        if request_type not in ("Create", "Update", "Delete"):
            raise ValueError(f"unknown RequestType {request_type!r}")
        roles = props.get("BackendRoles") or []
        if isinstance(roles, str):
            roles = [roles]
        version = str(props.get("IndexVersion") or "").strip()
        return cls(
            request_type=request_type,
            endpoint=str(props.get("Endpoint", "")),
            alias=str(props.get("Alias", "")),
            access=str(props.get("Access", "")),
            backend_roles=tuple(str(r) for r in roles),
            index_version=int(version) if version else None,
            physical_id=event.get("PhysicalResourceId"),
        )


def handler(event: dict[str, Any], context: Any) -> None:
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else 300.0
    budget = max(5.0, remaining - RESPONSE_RESERVE_SECONDS - INDEX_RESERVE_SECONDS)
    status, reason, physical_id, data = "SUCCESS", "", event.get("PhysicalResourceId"), {}
    admin = None
    try:
        request = AccessRequest.parse(event)
        admin = bootstrap.search_administration(request.endpoint, alias=request.alias, budget_seconds=budget)
        physical_id, data = apply(request, admin)
    except Exception as exc:  # noqa: BLE001 - every failure must reach CloudFormation as FAILED
        logger.exception("OpenSearch access %s failed", event.get("RequestType"))
        reason = f"{type(exc).__name__}: {exc}"[:900]
        # A Delete never fails the stack (module docstring); anything else does, with the reason.
        status = "SUCCESS" if event.get("RequestType") == "Delete" else "FAILED"
        # A failed Create has no role to delete later: mark it, so the rollback's Delete does nothing.
        physical_id = physical_id or f"{NOT_CREATED_PREFIX}{event.get('RequestId', 'unknown')}"
    response = {
        "Status": status,
        "Reason": reason or f"see CloudWatch log stream {getattr(context, 'log_stream_name', '')}",
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "NoEcho": False,
        "Data": data,
    }
    respond = admin.respond if admin is not None else bootstrap.custom_resource_responder()
    respond(event["ResponseURL"], response)


def apply(request: AccessRequest, admin: bootstrap.SearchAdministration) -> tuple[str, dict[str, str]]:
    """Does what the request asks; returns the PhysicalResourceId and the resource's attributes."""
    if request.request_type == "Delete":
        name = request.physical_id or ""
        if not name or name.startswith(NOT_CREATED_PREFIX):
            return name, {}
        try:
            admin.security.revoke(name)
        except Exception:  # noqa: BLE001 - see the module docstring: a delete never blocks the stack
            logger.exception("could not remove OpenSearch role %s; leaving it to the domain's lifetime", name)
        return name, {}
    name = admin.security.grant(request.alias, request.access, request.backend_roles)
    data = {"RoleName": name}
    if request.index_version is not None:
        data["IndexName"] = admin.index.ensure_index(request.index_version)
    return name, data
