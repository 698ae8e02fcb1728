"""botocore `before-call` hooks on the default session: record every AWS call the product makes, or answer one
operation with an error in the shape the service sends (a parsed error body and its HTTP status).

Registered before the product's clients exist (they are made on first use and copy the session's handlers then).
A `before-call` answer skips botocore's retries: the product sees what it would once the SDK's retries are spent.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from aws_inventory import ADAPTERS, Site, aws_call_sites

# The services' own throttling answers: the error codes each service's API reference lists (botocore's models
# declare them for DynamoDB, Rekognition and Cognito; the others are the services' common errors), with the HTTP
# status each sends. S3 answers SlowDown with 503; the query-protocol services (CloudFormation, CloudWatch) say
# "Throttling"; Rekognition's ThrottlingException is a 500.
THROTTLES = {
    "s3": [("SlowDown", 503, "Please reduce your request rate.")],
    "dynamodb": [
        ("ProvisionedThroughputExceededException", 400,
         "The level of configured provisioned throughput for the table was exceeded."),
        ("ThrottlingException", 400, "Rate of requests exceeds the allowed throughput."),
        ("RequestLimitExceeded", 400, "Throughput exceeds the current throughput limit for your account."),
    ],
    "rekognition": [
        ("ProvisionedThroughputExceededException", 400, "Provisioned Rate exceeded"),
        ("ThrottlingException", 500, "Slow down!"),
    ],
    "secretsmanager": [("ThrottlingException", 400, "Rate exceeded")],
    "cognito-idp": [("TooManyRequestsException", 400, "Too many requests")],
    "sagemaker": [("ThrottlingException", 400, "Rate exceeded")],
    "sagemaker-runtime": [("ThrottlingException", 400, "Rate exceeded")],
    "glue": [("ThrottlingException", 400, "Rate exceeded")],
    "cloudformation": [("Throttling", 400, "Rate exceeded")],
    "cloudwatch": [("Throttling", 400, "Rate exceeded")],
}


def throttle(service: str, operation: str, *, module: str | None = None, times: int | None = 1,
             variant: int | None = None) -> Fault:
    """The service's throttling answer for one call site; a service with several codes answers each site with one
    of them, chosen by the site (so the cases together use every code)."""
    codes = THROTTLES[service]
    index = zlib.crc32(f"{module}:{operation}".encode()) if variant is None else variant
    code, status, message = codes[index % len(codes)]
    return Fault(service, operation, code, status, message, times=times, module=module)


def adapter_modules() -> list[str]:
    """The adapters/aws modules on the current call stack, innermost first (which adapter made the call)."""
    root, found = str(ADAPTERS), []
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith(root):
            module = frame.f_code.co_filename.rsplit("/", 1)[-1].removesuffix(".py")
            if module not in found:
                found.append(module)
        frame = frame.f_back
    return found


# A role without kms:GenerateDataKey / kms:Decrypt on the bucket's or table's key, as each service reports it.
KMS_DENIED = {
    "s3": ("AccessDenied", 403, "User: arn:aws:sts::123456789012:assumed-role/po-ingest/fn is not authorized to "
           "perform: kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:123456789012:key/1234abcd because "
           "no identity-based policy allows the kms:GenerateDataKey action"),
    "dynamodb": ("KMSAccessDeniedException", 400, "The ciphertext refers to a customer master key that does not "
                 "exist, does not exist in this region, or you are not allowed to access."),
}


def site_of(service: str, operation: str, modules: list[str]) -> Site | None:
    """The inventory's site a call belongs to: the outermost adapter module on its stack that uses the operation
    (dynamodb_people's query goes through dynamodb_analysis's DynamoDbTable.call: it is dynamodb_people's call)."""
    inventory = aws_call_sites()
    for module in reversed(modules):
        if (site := Site(module, service, operation)) in inventory:
            return site
    return None


@dataclass
class Fault:
    service: str
    operation: str
    code: str
    status: int
    message: str
    times: int | None = None  # None: every call while armed
    skip: int = 0  # calls of the operation let through before the fault (e.g. the preview's put, then refuse)
    fired: int = 0
    module: str | None = None  # only calls made through this adapter module (aws_inventory.Site.module)

    def due(self, service: str, operation: str, site: Site | None = None) -> bool:
        if (service, operation) != (self.service, self.operation):
            return False
        if self.module is not None and (site is None or site.module != self.module):
            return False
        if self.skip:
            self.skip -= 1
            return False
        return self.times is None or self.fired < self.times


@dataclass
class AwsCalls:
    """The hook's state: every (service, operation) seen, and the armed fault (if any)."""

    seen: list[tuple[str, str]] = field(default_factory=list)
    fault: Fault | None = None
    paused: bool = False
    # Operations moto does not implement, answered with a recorded response shape: (service, operation) -> a
    # function of the request's parameters (botocore's serialized request dict) returning the parsed response.
    answers: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)
    answered: list[tuple[str, str]] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)  # every call, as the inventory's sites it belongs to

    def install(self) -> AwsCalls:
        self._session = boto3._get_default_session()
        self._session.events.register_first("before-call", self._before_call)
        # Clients of other sessions (Powertools parameters makes its own boto3 Session) get the hook as made.
        self._session_client = boto3.session.Session.client
        hook, default, make = self._before_call, self._session, self._session_client

        def client(session, *args, **kwargs):
            made = make(session, *args, **kwargs)
            if session is not default:
                made.meta.events.register_first("before-call", hook)
            return made

        boto3.session.Session.client = client
        return self

    def uninstall(self) -> None:
        """Clients made meanwhile keep their copy of the handler; they die with the test's mock."""
        self._session.events.unregister("before-call", self._before_call)
        boto3.session.Session.client = self._session_client

    def _before_call(self, model, params, request_signer, context=None, **kwargs):
        service = model.service_model.service_name
        if self.paused:
            return None
        self.seen.append((service, model.name))
        site = site_of(service, model.name, adapter_modules())
        if site is not None:
            self.sites.append(site)
        fault = self.fault
        if fault is None or not fault.due(service, model.name, site):
            answer = self.answers.get((service, model.name))
            if answer is None:
                return None
            self.answered.append((service, model.name))
            parsed = dict(answer(params))  # an error answer carries its status in ResponseMetadata
            parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": 200, "HTTPHeaders": {}})
            status = parsed["ResponseMetadata"]["HTTPStatusCode"]
            return AWSResponse(f"https://{service}.amazonaws.com/", status, {}, None), parsed
        fault.fired += 1
        response = AWSResponse(f"https://{service}.amazonaws.com/", fault.status, {}, None)
        parsed = {"Error": {"Code": fault.code, "Message": fault.message},
                  "ResponseMetadata": {"HTTPStatusCode": fault.status, "HTTPHeaders": {}}}
        return response, parsed

    def calls_since(self, start: int, site: Site) -> int:
        return sum(1 for seen in self.sites[start:] if seen == site)

    def distinct(self) -> list[tuple[str, str]]:
        """The product's calls: the stream's GetRecords is Lambda's poller (the test pumps it), not the product."""
        return sorted({call for call in self.seen if call[0] != "dynamodbstreams"})
