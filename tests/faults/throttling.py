"""The throttling suite's harness: which use case throttles which call site (COVERAGE: every site of the
inventory, aws_inventory.aws_call_sites, has a case; test_throttling_inventory checks both ways), and the caller's
retry loop every case runs its steps through.

A step is what one caller does once: an API request (the client retries a 503), one delivery of a queue or stream
batch (SQS / Lambda's stream poller redeliver a failed record), one job or pipeline step (its orchestrator retries a
raised retryable error). A throttled call must end the step either
- retried by the product and succeeded (the call is made again after the throttle, within the step), or
- with a retryable answer (503, a batch item failure, a RetryableError), after which the caller's retry completes;
never with success while the throttled call was given up, nor with a permanent failure (a 500, a 4xx, a dead letter).
Each case then checks that nothing was lost or doubled: the photo library audit, and the use case's own census.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_faults import AwsCalls, Fault
from aws_inventory import Site
from fault_library import OWNER

OK, RETRY = "ok", "retry"


def site(text: str) -> Site:
    """"s3_blobs:s3.PutObject" -> Site."""
    module, call = text.split(":", 1)
    service, operation = call.split(".", 1)
    return Site(module, service, operation)


def sites(*texts: str) -> tuple[Site, ...]:
    return tuple(site(t) for t in texts)


# Which use case throttles which site. A site may be thrown at by more than one use case; each is listed once.
COVERAGE: dict[str, tuple[Site, ...]] = {}


def covers(use_case: str, *texts: str) -> tuple[Site, ...]:
    found = sites(*texts)
    COVERAGE[use_case] = COVERAGE.get(use_case, ()) + found
    return found


def call_api(method: str, path: str, body: dict | None = None, *, owner: str = OWNER, login: str | None = None,
             query: list[tuple[str, str]] | None = None, key: str | None = None) -> tuple[int, dict]:
    """One request through the API handler, as API Gateway passes it with the caller's verified claims. `key`: the
    Idempotency-Key the web app sends with a correction, the same on each retry of it."""
    from photo_organizer.handlers import api
    from photo_organizer.local_stack.events import LambdaContextStub, http_api_event

    claims = {"sub": owner, "token_use": "id"} | ({"cognito:username": login} if login else {})
    headers = {"content-type": "application/json"} | ({"idempotency-key": key} if key else {})
    event = http_api_event(method=method, path=path, headers=headers,
                           body=json.dumps(body).encode() if body is not None else b"", claims=claims,
                           **({"query": query} if query else {}))
    result = api.handler(event, LambdaContextStub())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


@dataclass
class Outcome:
    kind: str  # OK, RETRY, or a failure's description
    value: Any = None


def api_outcome(result: tuple[int, dict]) -> Outcome:
    status, body = result
    if 200 <= status < 300:
        return Outcome(OK, body)
    if status == 503 and body.get("code") == "unavailable":
        return Outcome(RETRY, body)
    return Outcome(f"HTTP {status} {json.dumps(body)[:200]}", body)


def batch_outcome(response: dict) -> Outcome:
    """A stream or queue handler's partial batch response."""
    return Outcome(RETRY if response.get("batchItemFailures") else OK, response)


def raised_outcome(action: Callable[[], Any]) -> Outcome:
    """A job step or Lambda step: a RetryableError is retried by its orchestrator; anything else fails it."""
    from photo_organizer.errors import RetryableError

    try:
        return Outcome(OK, action())
    except RetryableError as exc:
        return Outcome(RETRY, exc)
    except Exception as exc:  # noqa: BLE001 - the case reports what escaped
        return Outcome(f"{type(exc).__name__}: {exc}", exc)


@dataclass
class Caller:
    """Runs steps as their callers would, against the armed fault of `calls`."""

    calls: AwsCalls
    max_attempts: int = 6
    retried_inside: int = 0  # steps in which the product retried the throttled call itself
    retryable_answers: int = 0  # retryable answers the caller retried
    deferred: int = 0  # steps that left the throttled work to a later step, by design

    def step(self, name: str, attempt: Callable[[], Outcome], *,
             deferred: Callable[[Any], bool] = lambda value: False) -> Any:
        """`deferred`: the step succeeded and says it left the throttled work to a later step by design (the
        retraining trigger: the next feedback batch starts the run); the case then checks that later step."""
        fault = self.calls.fault
        for _ in range(self.max_attempts):
            fired_before, start = (fault.fired if fault else 0), len(self.calls.sites)
            outcome = attempt()
            fired = fault is not None and fault.fired > fired_before
            if outcome.kind == OK:
                if fired and deferred(outcome.value):
                    self.deferred += 1
                elif fired:
                    throttled = self._throttled_site(fault)
                    assert throttled is None or self.calls.calls_since(start, throttled) > fault.fired - fired_before, (
                        f"{name}: {throttled} was throttled and the step succeeded without making the call again")
                    self.retried_inside += 1
                return outcome.value
            assert outcome.kind == RETRY, f"{name}: the step ended with {outcome.kind}"
            assert fired, f"{name}: a retryable answer without a throttle: {outcome.value!r}"
            self.retryable_answers += 1
        raise AssertionError(f"{name}: still failing after {self.max_attempts} attempts")

    @staticmethod
    def _throttled_site(fault: Fault) -> Site | None:
        return Site(fault.module, fault.service, fault.operation) if fault.module else None


def census(counts: Counter[str] | dict[str, int]) -> dict[str, int]:
    return dict(sorted((k, v) for k, v in counts.items() if v))
