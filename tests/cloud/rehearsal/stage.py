"""The rehearsal stage: moto holding the templates' data plane, the OpenSearch stand-in, every function as deployed,
the HTTP API as its template routes it, and the event sources as their mappings poll them; plus the offline check of
every AWS call a function made against its role's statements.

    stage = Rehearsal(synthesize("default"))
    api = stage.function("Api")
    status, body = stage.http.request("GET", "/photos", token=stage.sign_in("ana"))
    assert stage.denials(api) == []
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assembly import CACHE, Assembly
from .dataplane import DataPlane
from .functions import DeployedFunction
from .motoserver import MotoServer
from .needs import CallContext, event_source_needs, needs_of, opensearch_needs
from .opensearch import OpenSearchStandIn
from .rekognition import rekognition_standin
from .policy import Decision, Need, evaluate

PASSWORD = "Rehearsal-Passw0rd!"
# Deploy-time custom resources of CDK itself that the rehearsal performs instead of running their handler: the
# bucket deployment's handler needs the Lambda runtime's boto3 and the AWS CLI layer, neither of which a function's
# own staged code holds. Their provider functions are not among function_ids().
PLAYED_CUSTOM_RESOURCES = ("Custom::CDKBucketDeployment",)


@dataclass
class EventSourceMapping:
    logical_id: str
    function: str  # logical id of the function
    source_arn: str
    batch_size: int
    report_failures: bool
    on_failure: str | None
    filters: tuple[dict, ...] = ()  # FilterCriteria patterns: a record reaches the function when one matches


def matches_filter(pattern: Any, value: Any) -> bool:
    """Lambda's event filtering (the subset the templates use): a dict pattern matches a dict whose keys all match;
    a list pattern lists the exact values allowed."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_filter(p, value[k]) for k, p in pattern.items())
    if isinstance(pattern, list):
        return any(not isinstance(p, dict) and value == p for p in pattern)
    return value == pattern


class Rehearsal:
    def __init__(self, assembly: Assembly, *, name: str = "default", enforce_iam: bool = False) -> None:
        self.assembly = assembly
        # Logs of this process's stage (xdist workers may each run one): build/rehearsal/run-<name>/<pid>/
        self.directory = CACHE / f"run-{name}" / str(os.getpid())
        for old in self.directory.parent.glob("*"):
            if old.name.isdigit() and not _alive(int(old.name)):
                shutil.rmtree(old, ignore_errors=True)
        first = next(iter(assembly.stacks.values())).environment
        self.account, self.region = first.account, first.region
        self.moto = MotoServer(account=self.account, log=self.directory / "moto.log")
        # Certificate and key in a directory of this process alone: two rehearsals must never share them.
        self._tls = Path(tempfile.mkdtemp(prefix="rehearsal-opensearch-tls-"))
        self.opensearch = OpenSearchStandIn(self._tls)
        # moto answers every Rekognition collection call with HTTP 500 (not implemented), which the product rightly
        # treats as a service fault: the functions reach the Glue tests' stand-in instead, as the Glue jobs do.
        self.rekognition = rekognition_standin().start()
        try:
            self.dataplane = DataPlane(assembly, self.moto.url, opensearch_host=self.opensearch.host)
            self.dataplane.create_all()
        except BaseException:
            self.close()
            raise
        self.context = CallContext(self.account, self.region, self.dataplane.kms_keys)
        self._role_credentials: dict[str, dict] = {}
        self.iam_enforced = False
        if enforce_iam:
            self._enforce_iam()
        self._functions: dict[str, DeployedFunction] = {}
        self._implied: dict[str, list[Need]] = {}
        self._stream_positions: dict[str, str] = {}
        self.http = HttpApi(self)

    def close(self) -> None:
        for function in getattr(self, "_functions", {}).values():
            function.stop()
        self.opensearch.close()
        if getattr(self, "rekognition", None) is not None:
            self.rekognition.stop()
        self.moto.stop()
        shutil.rmtree(self._tls, ignore_errors=True)

    # ---- resources ---------------------------------------------------------------------------------------

    def resolve(self, stack: str, value: Any) -> Any:
        return self.dataplane.resolve(stack, value)

    def client(self, service: str):
        return self.dataplane.client(service)

    def resource(self, concern: str, logical_prefix: str) -> tuple[str, str, dict]:
        """(stack, logical id, resource) of the resource of a stack whose construct path is `logical_prefix` (the
        logical id is that path followed by CDK's 8-hex-digit hash)."""
        stack = self.assembly.stack_named(concern)
        matches = [(stack.name, logical, r) for logical, r in stack.resources.items()
                   if re.fullmatch(re.escape(logical_prefix) + "[0-9A-F]{8}", logical)]
        if len(matches) != 1:
            raise KeyError(f"{concern}: {len(matches)} resources start with {logical_prefix}")
        return matches[0]

    def ref(self, concern: str, logical_prefix: str, attribute: str | None = None) -> Any:
        stack, logical, _ = self.resource(concern, logical_prefix)
        return self.dataplane.physical(stack, logical, attribute)

    # ---- functions ---------------------------------------------------------------------------------------

    def function_ids(self) -> list[tuple[str, str]]:
        played = self.played_provider_ids()
        return [(stack, logical) for stack, logical, _ in self.assembly.resources("AWS::Lambda::Function")
                if (stack, logical) not in played]

    def played_provider_ids(self) -> set[tuple[str, str]]:
        """The functions behind PLAYED_CUSTOM_RESOURCES (their ServiceToken's GetAtt)."""
        played = set()
        for type_ in PLAYED_CUSTOM_RESOURCES:
            for stack, _, resource in self.assembly.resources(type_):
                token = resource["Properties"]["ServiceToken"]
                played.add((stack, token["Fn::GetAtt"][0]))
        return played

    def function(self, logical_prefix: str) -> DeployedFunction:
        """The running function whose logical id starts with the prefix ("Api", "Validator", "Indexer")."""
        matches = [(s, lid) for s, lid in self.function_ids()
                   if re.fullmatch(re.escape(logical_prefix) + "(Function)?[0-9A-F]{8}", lid)]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} functions start with {logical_prefix}: {self.function_ids()}")
        return self.function_by_id(*matches[0])

    def function_by_id(self, stack: str, logical: str) -> DeployedFunction:
        if logical not in self._functions:
            self._functions[logical] = self._start(stack, logical)
        return self._functions[logical]

    def _start(self, stack: str, logical: str) -> DeployedFunction:
        resource = self.assembly.stack(stack).resources[logical]
        props = resource["Properties"]
        environment = {k: str(v) for k, v in self.resolve(stack, props.get("Environment", {}).get("Variables", {})).items()}
        role_arn = self.resolve(stack, props["Role"])
        log_group = self.resolve(stack, props.get("LoggingConfig", {}).get("LogGroup")) or f"/aws/lambda/{logical}"
        name = self.dataplane.physical(stack, logical, None)
        function = DeployedFunction(
            stack=stack, logical_id=logical, name=name, handler=props["Handler"],
            code_dir=self.assembly.code_directory(stack, resource), environment=environment,
            role_name=role_arn.rsplit("/", 1)[-1], role_arn=role_arn, timeout=int(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)), log_file=self.directory / "logs" / f"{logical}.log",
        )
        # What the Lambda service does with the role for every invocation: write the function's log group, and
        # send trace segments when tracing is active.
        runtime = [Need(f"logs:{a}", self._log_stream_arn(str(log_group)), why="Lambda runtime: function logs")
                   for a in ("CreateLogStream", "PutLogEvents")]
        if props.get("TracingConfig", {}).get("Mode") == "Active":
            runtime += [Need(f"xray:{a}", "*", why="Lambda runtime: active tracing")
                        for a in ("PutTraceSegments", "PutTelemetryRecords")]
        self._implied.setdefault(logical, []).extend(runtime)
        function.start(self._credentials_for(role_arn, name), {
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.moto.url.replace("127.0.0.1", "localhost"),  # <bucket>.localhost resolves
            "AWS_ENDPOINT_URL_REKOGNITION": self.rekognition.endpoint_url,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # moto's DynamoDB streams 404 on account endpoints
            "SSL_CERT_FILE": str(self.opensearch.ca_file),  # trusts the OpenSearch stand-in's certificate
            "AWS_LAMBDA_LOG_GROUP_NAME": str(log_group),
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            "REHEARSAL_ACCOUNT": self.account,
        })
        return function

    def _log_stream_arn(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}:log-stream:rehearsal"

    def _credentials_for(self, role_arn: str, session: str) -> dict:
        if role_arn not in self._role_credentials:
            self._role_credentials[role_arn] = self.client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName=session[:64])["Credentials"]
        return self._role_credentials[role_arn]

    def _enforce_iam(self) -> None:
        """moto's own IAM enforcement from here on (moto-api/reset-auth, the server form of INITIAL_NO_AUTH_ACTION_COUNT):
        requests signed with a function role's session are checked by moto against that role's policies. The roles
        are assumed first (their trust policy names lambda.amazonaws.com, which the harness is not: moto 5.2.5
        crashes on that check), then the harness switches to an administrator user of its own.

        Off by default: moto 5.2.5 determines the request's resource for SQS, IAM and STS only and checks every other
        service's calls against "*", so each resource-scoped statement (all of CDK's grants) is refused there, e.g.
        the API's secretsmanager:GetSecretValue on its cursor secret. The offline evaluator is the check."""
        import urllib.request

        import boto3

        for stack, logical in self.function_ids():
            role_arn = self.resolve(stack, self.assembly.stack(stack).resources[logical]["Properties"]["Role"])
            self._credentials_for(role_arn, logical)
        iam = self.client("iam")
        iam.create_user(UserName="rehearsal-harness")
        iam.put_user_policy(UserName="rehearsal-harness", PolicyName="harness", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="rehearsal-harness")["AccessKey"]
        self.dataplane.session = boto3.Session(region_name=self.region, aws_access_key_id=key["AccessKeyId"],
                                               aws_secret_access_key=key["SecretAccessKey"])
        request = urllib.request.Request(f"{self.moto.url}/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request) as response:
            assert json.loads(response.read())["status"] == "ok"
        self.iam_enforced = True

    # ---- the offline check of every call -----------------------------------------------------------------

    def statements(self, function: DeployedFunction) -> list[tuple[str, dict]]:
        return self.dataplane.role_statements(function.role_name)

    def search_target(self) -> tuple[str, str]:
        """(ARN, SigV4 service) of the search domain or collection of the templates."""
        for stack, logical, _ in self.assembly.resources("AWS::OpenSearchService::Domain"):
            return self.dataplane.physical(stack, logical, "Arn"), "es"
        for stack, logical, _ in self.assembly.resources("AWS::OpenSearchServerless::Collection"):
            return self.dataplane.physical(stack, logical, "Arn"), "aoss"
        raise KeyError("no search domain or collection in the templates")

    def needs(self, function: DeployedFunction) -> list[Need]:
        needs = [n for call in function.calls for n in needs_of(call, self.context)]
        for request in self.opensearch.requests_by(function.access_keys):
            arn, service = self.search_target()
            needs += opensearch_needs(request.method, request.path, arn, request.signed_service or service)
        return needs + self._implied.get(function.logical_id, [])

    def decisions(self, function: DeployedFunction) -> list[Decision]:
        statements = self.statements(function)
        seen, decisions = set(), []
        for need in self.needs(function):
            key = (need.action, need.resource, need.context)
            if key not in seen:
                seen.add(key)
                decisions.append(evaluate(need, statements))
        return decisions

    def denials(self, function: DeployedFunction) -> list[str]:
        """Each refused permission as 'missing statement {json} for <call>' (empty when every call is allowed)."""
        return [f"missing statement {json.dumps(d.missing_statement())} for {d.need.why}"
                for d in self.decisions(function) if not d.allowed]

    def imply(self, function: DeployedFunction, needs: list[Need]) -> None:
        self._implied.setdefault(function.logical_id, []).extend(needs)

    # ---- event sources -----------------------------------------------------------------------------------

    def mappings(self) -> list[EventSourceMapping]:
        found = []
        for stack, logical, resource in self.assembly.resources("AWS::Lambda::EventSourceMapping"):
            props = resource["Properties"]
            target = props["FunctionName"]["Ref"]
            on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            filters = tuple(json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", []))
            found.append(EventSourceMapping(
                logical, target, self.resolve(stack, props["EventSourceArn"]), int(props.get("BatchSize", 10)),
                "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                self.resolve(stack, on_failure) if on_failure else None, filters))
        return found

    def mapping_of(self, function: DeployedFunction) -> EventSourceMapping:
        return next(m for m in self.mappings() if m.function == function.logical_id)

    def poll_queue(self, function: DeployedFunction, *, release_failures: bool = False):
        """One poll of the function's SQS event source as Lambda does it (with the function's role): receive up to
        the batch size, invoke, delete what succeeded. Failures stay on the queue; `release_failures` makes them
        visible again at once (what the visibility timeout does, without waiting for it). Returns the invocation,
        or None when the queue was empty."""
        mapping = self.mapping_of(function)
        queue_name = mapping.source_arn.rsplit(":", 1)[-1]
        self.imply(function, event_source_needs("sqs", mapping.source_arn, self.context, queue_name))
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(mapping.batch_size, 10),
                                       AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return None
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": mapping.source_arn, "awsRegion": self.region,
        } for m in messages]}
        invocation = function.invoke(event)
        failed = {f["itemIdentifier"] for f in (invocation.result or {}).get("batchItemFailures", [])} \
            if invocation.error is None else {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            elif release_failures:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)
        return invocation

    def poll_stream(self, function: DeployedFunction):
        """Deliver the table stream's new records (read from moto's stream) to the function, as its mapping would
        (batch size and filter criteria from the template; each mapping keeps its own position in the stream, as
        Lambda does). Returns the invocations."""
        mapping = self.mapping_of(function)
        self.imply(function, event_source_needs("dynamodb", mapping.source_arn, self.context))
        if mapping.on_failure:  # Lambda sends the records it gives up on there, with the function's role
            queue = mapping.on_failure.rsplit(":", 1)[-1]
            self.imply(function, [
                Need(n.action, n.resource, n.context, f"event source mapping: on-failure destination ({n.why})")
                for n in needs_of({"service": "sqs", "operation": "SendMessage", "params": {"QueueName": queue}},
                                  self.context)])
        streams = self.client("dynamodbstreams")
        shards = streams.describe_stream(StreamArn=mapping.source_arn)["StreamDescription"]["Shards"]
        invocations = []
        for shard in shards:
            key = f"{mapping.logical_id}|{mapping.source_arn}|{shard['ShardId']}"
            after = self._stream_positions.get(key)
            iterator = streams.get_shard_iterator(
                StreamArn=mapping.source_arn, ShardId=shard["ShardId"],
                **({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after} if after
                   else {"ShardIteratorType": "TRIM_HORIZON"}))["ShardIterator"]
            records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
            delivered = [_stream_record(r, mapping.source_arn) for r in records]
            if mapping.filters:  # filtered-out records are dropped by Lambda, never delivered
                delivered = [r for r in delivered if any(matches_filter(p, r) for p in mapping.filters)]
            for start in range(0, len(delivered), mapping.batch_size):
                event = {"Records": delivered[start:start + mapping.batch_size]}
                invocations.append(function.invoke(event))
            if records:
                self._stream_positions[key] = records[-1]["dynamodb"]["SequenceNumber"]
        return invocations

    # ---- deploy-time custom resources ---------------------------------------------------------------------

    def run_custom_resources(self, request_type: str = "Create") -> dict[str, dict]:
        """Each Custom::* resource of the templates as CloudFormation runs it: a Create (deploy order) or Delete
        (reverse order, after a Create) event with its resolved properties to the function its ServiceToken names,
        and a presigned S3 PUT (moto) as the ResponseURL. Returns the responses by logical id (Status, Reason,
        PhysicalResourceId, Data). Create runs once per stage."""
        if request_type == "Create" and getattr(self, "_custom_responses", None) is not None:
            return self._custom_responses
        created = self.run_custom_resources("Create") if request_type == "Delete" else {}
        s3 = self.client("s3")
        bucket = "rehearsal-cloudformation-responses"
        if request_type == "Create":
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        arns = {self.dataplane.physical(stack, logical, "Arn"): (stack, logical) for stack, logical in self.function_ids()}
        responses: dict[str, dict] = {}
        stacks = list(self.assembly.stacks.items())  # the manifest lists stacks in dependency order
        for stack, artifact in (stacks if request_type == "Create" else stacks[::-1]):
            for logical, resource in artifact.resources.items():
                if not (resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource"):
                    continue
                props = self.resolve(stack, resource["Properties"])
                if resource["Type"] in PLAYED_CUSTOM_RESOURCES:
                    responses[logical] = self.play_bucket_deployment(stack, props, request_type)
                    continue
                function = self.function_by_id(*arns[props["ServiceToken"]])
                key = f"{request_type}/{stack}/{logical}"
                url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
                event = {"RequestType": request_type, "ResponseURL": url,
                         "StackId": self.dataplane.resolver.pseudo(stack, "AWS::StackId"), "RequestId": str(uuid.uuid4()),
                         "LogicalResourceId": logical, "ResourceType": resource["Type"], "ResourceProperties": props,
                         "ServiceToken": props["ServiceToken"]}
                if request_type == "Delete":
                    event["PhysicalResourceId"] = created[logical].get("PhysicalResourceId")
                invocation = function.invoke(event)
                try:
                    responses[logical] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                except s3.exceptions.NoSuchKey:
                    responses[logical] = {"Status": "NO RESPONSE", "Reason": str(invocation.error)}
        if request_type == "Create":
            self._custom_responses = responses
        return responses

    def play_bucket_deployment(self, stack: str, props: dict, request_type: str = "Create") -> dict:
        """What CDK's bucket deployment handler does on Create/Update (its resolved properties): unpack each source
        (the staged asset directory `cdk deploy` zips), put the deploy-time values in for the markers, write every
        file under the destination prefix with the system metadata. Delete keeps the files (RetainOnDelete, the
        default). Pruning is moot: the rehearsal bucket starts empty."""
        import mimetypes

        physical = f"aws.cdk.s3deployment.{stack}"
        if request_type == "Delete":
            return {"Status": "SUCCESS", "PhysicalResourceId": physical, "Data": {}}
        s3 = self.client("s3")
        keys = props["SourceObjectKeys"]
        markers = props.get("SourceMarkers") or [{} for _ in keys]
        metadata = props.get("SystemMetadata", {})
        prefix = props.get("DestinationBucketKeyPrefix", "")
        written = []
        for key, source_markers in zip(keys, markers, strict=True):
            asset = self.assembly.stacks[stack].assets[key.removesuffix(".zip")]
            directory = self.assembly.directory / asset["source"]["path"]
            for path in sorted(p for p in directory.rglob("*") if p.is_file()):
                body = path.read_bytes()
                for marker, value in source_markers.items():
                    body = body.replace(marker.encode(), str(value).encode())
                name = prefix + path.relative_to(directory).as_posix()
                extra = {"ContentType": mimetypes.guess_type(name)[0] or "application/octet-stream"}
                if "cache-control" in metadata:
                    extra["CacheControl"] = metadata["cache-control"]
                s3.put_object(Bucket=props["DestinationBucketName"], Key=name, Body=body, **extra)
                written.append(name)
        return {"Status": "SUCCESS", "PhysicalResourceId": physical, "Data": {"SourceObjectKeys": written}}

    # ---- the browser's side -----------------------------------------------------------------------------

    def browser_post(self, ticket: dict, data: bytes, *, filename: str = "upload.jpg") -> int:
        """What the SPA does with an upload ticket: a multipart POST of the fields and the file to the presigned URL
        (a <bucket>.localhost name of the moto server, reached on 127.0.0.1 with that Host header)."""
        import urllib.parse

        import requests

        url = urllib.parse.urlsplit(ticket["url"])
        target = f"http://127.0.0.1:{url.port}{url.path or '/'}"
        response = requests.post(target, data=ticket["fields"], files={"file": (filename, data)},
                                 headers={"Host": url.netloc}, timeout=30)
        return response.status_code

    def browser_get(self, url: str) -> int:
        """Follow a presigned GET link the API handed out (as an <img> would)."""
        import urllib.parse

        import requests

        parts = urllib.parse.urlsplit(url)
        target = f"http://127.0.0.1:{parts.port}{parts.path}?{parts.query}"
        return requests.get(target, headers={"Host": parts.netloc}, timeout=30).status_code

    # ---- users -------------------------------------------------------------------------------------------

    def sign_in(self, username: str) -> str:
        """An IdToken of the templates' user pool for a user (created on first use), as the SPA gets after sign-in."""
        pool = self.ref("auth", "Users")
        client = self.ref("auth", "UsersSpa")
        idp = self.client("cognito-idp")
        email = f"{username}@example.com"
        try:
            idp.admin_create_user(UserPoolId=pool, Username=email, MessageAction="SUPPRESS",
                                  UserAttributes=[{"Name": "email", "Value": email},
                                                  {"Name": "email_verified", "Value": "true"}])
            idp.admin_set_user_password(UserPoolId=pool, Username=email, Password=PASSWORD, Permanent=True)
        except idp.exceptions.UsernameExistsException:
            pass
        result = idp.admin_initiate_auth(UserPoolId=pool, ClientId=client, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                         AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD})
        return result["AuthenticationResult"]["IdToken"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stream_record(record: dict, stream_arn: str) -> dict:
    change = dict(record["dynamodb"])
    if "ApproximateCreationDateTime" in change and not isinstance(change["ApproximateCreationDateTime"], (int, float)):
        change["ApproximateCreationDateTime"] = int(change["ApproximateCreationDateTime"].timestamp())
    return {"eventID": record["eventID"], "eventName": record["eventName"], "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": record.get("awsRegion"), "dynamodb": _plain(change),
            "eventSourceARN": stream_arn}


def _plain(value: Any) -> Any:
    """boto3's low-level stream records back to the JSON Lambda receives (bytes as base64, sets as lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


class HttpApi:
    """The HTTP API as its template wires it: routes (method + path template), the JWT authorizer (issuer and
    audience from the template, signature against the user pool's JWKS in moto), CORS preflight from the API's
    CorsConfiguration, and the Lambda proxy integration (payload format 2.0)."""

    def __init__(self, stage: Rehearsal) -> None:
        self.stage = stage
        api_stack = stage.assembly.stack_named("api")
        self.stack = api_stack.name
        resources = api_stack.resources
        self.api = next(r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api")
        self.routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in resources.values()
                       if r["Type"] == "AWS::ApiGatewayV2::Route"}
        self.authorizers = {logical: stage.resolve(self.stack, r["Properties"]) for logical, r in resources.items()
                            if r["Type"] == "AWS::ApiGatewayV2::Authorizer"}
        self.integrations = {logical: r["Properties"] for logical, r in resources.items()
                             if r["Type"] == "AWS::ApiGatewayV2::Integration"}

    def route_for(self, method: str, path: str) -> str | None:
        for key in self.routes:
            route_method, template = key.split(" ", 1)
            if route_method not in (method, "ANY"):
                continue
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path):
                return key
        return None

    def cors(self) -> dict:
        return self.api["Properties"].get("CorsConfiguration", {})

    def preflight(self, method: str, origin: str) -> bool:
        cors = self.cors()
        return origin in cors.get("AllowOrigins", []) and method in cors.get("AllowMethods", [])

    def claims(self, route: dict, token: str | None) -> dict | None:
        """What the JWT authorizer passes on, or None when it refuses the request (401)."""
        if not token:
            return None
        from joserfc import jwt
        from joserfc.jwk import KeySet

        authorizer = self.authorizers[route["AuthorizerId"]["Ref"]]["JwtConfiguration"]
        issuer = authorizer["Issuer"]
        pool = issuer.rsplit("/", 1)[-1]
        import urllib.request

        with urllib.request.urlopen(f"{self.stage.moto.url}/{pool}/.well-known/jwks.json") as response:
            keys = KeySet.import_key_set(json.loads(response.read()))
        try:
            decoded = jwt.decode(token, keys)
        except Exception:
            return None
        claims = decoded.claims
        audience = claims.get("aud") or claims.get("client_id")
        if claims.get("iss") != issuer or audience not in authorizer["Audience"] or claims.get("exp", 0) < time.time():
            return None
        return {k: (v if isinstance(v, str) else json.dumps(v) if isinstance(v, (list, dict)) else str(v))
                for k, v in claims.items()}

    def event(self, method: str, path: str, route_key: str, *, claims: dict | None = None,
              query: dict[str, Any] | None = None, body: Any = None, headers: dict[str, str] | None = None) -> dict:
        route_template = route_key.split(" ", 1)[1]
        names = re.findall(r"\{([^}]+)\}", route_template)
        values = re.match("^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(route_template)) + "$", path)
        parameters = dict(zip(names, values.groups())) if names and values else None
        query = {k: v for k, v in (query or {}).items() if v is not None}
        raw_query = "&".join(f"{k}={v}" for k, values_ in query.items()
                             for v in (values_ if isinstance(values_, list) else [values_]))
        headers = {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}}
        event = {
            "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": raw_query,
            "headers": headers, "isBase64Encoded": False,
            "requestContext": {
                "accountId": self.stage.account, "apiId": "rehearsalapi", "domainName": "rehearsalapi.localhost",
                "domainPrefix": "rehearsalapi", "requestId": str(uuid.uuid4()), "routeKey": route_key,
                "stage": "$default", "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                "timeEpoch": int(time.time() * 1000),
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                         "userAgent": "rehearsal"},
            },
        }
        if query:
            event["queryStringParameters"] = {k: ",".join(v) if isinstance(v, list) else str(v)
                                              for k, v in query.items()}
        if parameters:
            event["pathParameters"] = parameters
        if claims is not None:
            event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        if body is not None:
            event["body"] = body if isinstance(body, str) else json.dumps(body)
        return event

    def request(self, method: str, path: str, *, token: str | None = None, query: dict | None = None,
                body: Any = None) -> tuple[int, Any]:
        """(status, parsed body) as a client of the deployed API would see them."""
        route_key = self.route_for(method, path)
        if route_key is None:
            return 404, {"message": "Not Found"}  # API Gateway's own answer: no route, the function never runs
        route = self.routes[route_key]
        claims = None
        if route.get("AuthorizationType") == "JWT":
            claims = self.claims(route, token)
            if claims is None:
                return 401, {"message": "Unauthorized"}
        function = self.stage.function("Api")
        invocation = function.invoke(self.event(method, path, route_key, claims=claims, query=query, body=body))
        if invocation.error:
            return 500, {"message": "Internal Server Error", "error": invocation.error}
        result = invocation.result
        text = result.get("body") or ""
        if result.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        return int(result.get("statusCode", 200)), payload
