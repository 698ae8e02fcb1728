"""botocore `before-call` hooks on the default session: record every AWS call the product makes, or answer one
operation with an error in the shape the service sends (a parsed error body and its HTTP status).

Registered before the product's clients exist (they are made on first use and copy the session's handlers then).
A `before-call` answer skips botocore's retries: the product sees what it would once the SDK's retries are spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boto3
from botocore.awsrequest import AWSResponse

# The services' own throttling answers (S3 error responses; DynamoDB's JSON error types).
THROTTLES = {
    "s3": [("SlowDown", 503, "Please reduce your request rate.")],
    "dynamodb": [
        ("ProvisionedThroughputExceededException", 400,
         "The level of configured provisioned throughput for the table was exceeded."),
        ("ThrottlingException", 400, "Rate of requests exceeds the allowed throughput."),
    ],
}
# A role without kms:GenerateDataKey / kms:Decrypt on the bucket's or table's key, as each service reports it.
KMS_DENIED = {
    "s3": ("AccessDenied", 403, "User: arn:aws:sts::123456789012:assumed-role/po-ingest/fn is not authorized to "
           "perform: kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:123456789012:key/1234abcd because "
           "no identity-based policy allows the kms:GenerateDataKey action"),
    "dynamodb": ("KMSAccessDeniedException", 400, "The ciphertext refers to a customer master key that does not "
                 "exist, does not exist in this region, or you are not allowed to access."),
}


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

    def due(self, service: str, operation: str) -> bool:
        if (service, operation) != (self.service, self.operation):
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

    def install(self) -> AwsCalls:
        self._session = boto3._get_default_session()
        self._session.events.register_first("before-call", self._before_call)
        return self

    def uninstall(self) -> None:
        """Clients made meanwhile keep their copy of the handler; they die with the test's mock."""
        self._session.events.unregister("before-call", self._before_call)

    def _before_call(self, model, params, request_signer, context=None, **kwargs):
        service = model.service_model.service_name
        if self.paused:
            return None
        self.seen.append((service, model.name))
        fault = self.fault
        if fault is None or not fault.due(service, model.name):
            return None
        fault.fired += 1
        response = AWSResponse(f"https://{service}.amazonaws.com/", fault.status, {}, None)
        parsed = {"Error": {"Code": fault.code, "Message": fault.message},
                  "ResponseMetadata": {"HTTPStatusCode": fault.status, "HTTPHeaders": {}}}
        return response, parsed

    def distinct(self) -> list[tuple[str, str]]:
        """The product's calls: the stream's GetRecords is Lambda's poller (the test pumps it), not the product."""
        return sorted({call for call in self.seen if call[0] != "dynamodbstreams"})
