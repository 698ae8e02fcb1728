"""Every AWS operation the product's adapters call, read from their source (adapters/aws), per adapter module:
the inventory the throttling suite must cover (test_throttling_inventory fails on a call without a case).

What counts as a call, per module:
- boto3: a method called on anything, or a string constant (the adapters dispatch `getattr(client, "put_item")`
  and `get_paginator("scan")`), that is an operation of a service whose client the module or an adapter module it
  imports makes (`boto3.client("s3")`, `client_factory("cloudwatch")`). Imports resolve ambiguity: `search` in the
  OpenSearch module is not SageMaker's Search, since that module makes no SageMaker client.
- Powertools parameters: `parameters.get_secret` is Secrets Manager's GetSecretValue.
- OpenSearch over HTTP: opensearch-py calls made inside `_call(what, lambda c: c.<op>(...))` (`c.indices.<op>`),
  and the security plugin's signed requests `_send("PUT", f"{SECURITY_API}/roles/...")`.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

ADAPTERS = Path(__file__).resolve().parents[2] / "lambdas" / "photo_organizer" / "adapters" / "aws"
PACKAGE = "photo_organizer.adapters.aws."
# A call into a library that makes an AWS call for the adapter.
WRAPPED = {("parameters", "get_secret"): ("secretsmanager", "GetSecretValue")}
# Methods the adapters call on a boto3 client that sign locally and send nothing.
LOCAL_ONLY = frozenset({"generate_presigned_url", "generate_presigned_post", "get_paginator"})


@dataclass(frozen=True, order=True)
class Site:
    """One adapter module's use of one operation: `module` is the adapter module's name (s3_blobs)."""

    module: str
    service: str
    operation: str

    def __str__(self) -> str:
        return f"{self.module}:{self.service}.{self.operation}"


@functools.cache
def _operations(service: str) -> dict[str, str]:
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), filename=str(path)) for path in sorted(ADAPTERS.glob("*.py"))}


def _name_of(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _clients_and_imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    services, imports = set(), set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and _name_of(node.func) in ("client", "client_factory") and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            services.add(node.args[0].value)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            imports.add(node.module.removeprefix(PACKAGE))
    return services, imports


def _opensearch_sites(module: str, tree: ast.Module) -> set[Site]:
    sites = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name_of(node.func)
        if name == "_call" and len(node.args) == 2 and isinstance(node.args[1], ast.Lambda):
            param = node.args[1].args.args[0].arg
            for inner in ast.walk(node.args[1].body):
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
                    target = inner.func.value
                    if isinstance(target, ast.Name) and target.id == param:
                        sites.add(Site(module, "opensearch", inner.func.attr))
                    elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                          and target.value.id == param):
                        sites.add(Site(module, "opensearch", f"{target.attr}.{inner.func.attr}"))
        elif name == "_send" and node.args and isinstance(node.args[0], ast.Constant) and len(node.args) > 1:
            path = node.args[1]
            parts = [v.value for v in path.values if isinstance(v, ast.Constant)] if isinstance(path, ast.JoinedStr) \
                else [path.value] if isinstance(path, ast.Constant) else []
            resource = "".join(parts).strip("/").split("/")[0] if parts else "?"
            sites.add(Site(module, "opensearch", f"{node.args[0].value} security/{resource}"))
    return sites


def _direct_opensearch_calls(module: str, tree: ast.Module) -> set[Site]:
    """`self._client().indices.get_alias(...)`: an opensearch-py call made outside `_call`."""
    sites = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "indices"
                and isinstance(node.func.value.value, ast.Call) and _name_of(node.func.value.value.func) == "_client"):
            sites.add(Site(module, "opensearch", f"indices.{node.func.attr}"))
    return sites


@functools.cache
def aws_call_sites() -> frozenset[Site]:
    modules = _modules()
    direct = {name: _clients_and_imports(tree) for name, tree in modules.items()}

    def services_of(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in seen or name not in direct:
            return set()
        clients, imports = direct[name]
        return set(clients).union(*(services_of(i, seen | {name}) for i in imports))

    sites: set[Site] = set()
    for name, tree in modules.items():
        services = services_of(name)
        for node in ast.walk(tree):
            candidates = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                if isinstance(receiver, ast.Name) and (receiver.id, node.func.attr) in WRAPPED:
                    sites.add(Site(name, *WRAPPED[(receiver.id, node.func.attr)]))
                if node.func.attr not in LOCAL_ONLY:
                    candidates.append(node.func.attr)
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                candidates.append(node.value)
            for candidate in candidates:
                for service in services:
                    if candidate in _operations(service):
                        sites.add(Site(name, service, _operations(service)[candidate]))
        if "opensearch" in name:
            sites |= _opensearch_sites(name, tree) | _direct_opensearch_calls(name, tree)
    return frozenset(sites)


if __name__ == "__main__":
    for site in sorted(aws_call_sites()):
        print(site)
