"""Shared fixtures of the deploy rehearsal (tests/cloud/); the helpers live in tests/cloud/rehearsal/.

- `assembly`: the synthesized cloud assembly (cdk.out) of cdk.json's context with the host bundle as Lambda code,
  cached under build/rehearsal/ by digest (rehearsal.assembly).
- `rehearsal`: a moto server holding the templates' data plane (rehearsal.dataplane), the local OpenSearch
  stand-in (rehearsal.opensearch) and every Lambda function of the templates, run from its staged code directory
  in a worker subprocess with its template environment and its role's credentials (rehearsal.functions). One per
  session; tests that need a clean table use their own user (`sub`), since every key is per owner.
- `quarantine_rehearsal`: the same, synthesized with rejected_action=quarantine.

Every test here is in one xdist group ("cloud"; the Glue tests keep their "spark") so the session fixtures are built
once. pytest-xdist 3.8.0 cannot group under pytest 9.2 (it sets a nodeid attribute pytest 9 no longer reads; a
plain six-test file was split across gw0/gw1), so the hook below sets the grouped nodeid itself for tests/cloud/.
Should a group still be split, nothing breaks: builds and syntheses are serialized by file locks
(rehearsal.bundles.exclusive) and each stage keeps its processes, ports, TLS files and logs to itself
(build/rehearsal/run-<name>/<pid>/). Glue tests may reuse `assembly` and `rehearsal.dataplane`.
"""

from __future__ import annotations

import pytest

from .rehearsal.assembly import synthesize
from .rehearsal.bundles import ensure_host_bundle
from .rehearsal.stage import Rehearsal


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups (it runs first otherwise)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/cloud/" not in str(item.fspath).replace("\\", "/"):
            continue
        if item.get_closest_marker("xdist_group") is None:  # a module with a group of its own ("spark") keeps it
            item.add_marker(pytest.mark.xdist_group("cloud"))
        _keep_group_together(config, item)


def _keep_group_together(config, item) -> None:
    """What pytest-xdist 3.8.0 means to do under --dist loadgroup: suffix the nodeid with "@<group>" so the
    controller sends the group to one worker. It sets item._nodeid, which pytest 9.2 no longer reads (nodeid comes
    from item._id), so every group was split across workers; this sets the id pytest 9 reads."""
    if config.getoption("dist", "no") != "loadgroup" or "@" in item.nodeid or not hasattr(item, "_id"):
        return
    from _pytest.nodeid import NodeId

    groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                     for m in item.iter_markers("xdist_group")})
    item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")


@pytest.fixture(scope="session")
def host_bundle():
    return ensure_host_bundle()


@pytest.fixture(scope="session")
def assembly(host_bundle):
    return synthesize("default")


@pytest.fixture(scope="session")
def rehearsal(assembly):
    stage = Rehearsal(assembly, name="default")
    try:
        yield stage
    finally:
        stage.close()


@pytest.fixture(scope="session")
def quarantine_rehearsal(host_bundle):
    stage = Rehearsal(synthesize("quarantine", {"rejected_action": "quarantine"}), name="quarantine")
    try:
        yield stage
    finally:
        stage.close()
