"""The data plane of the templates, created in moto from the synthesized resource properties.

A small translator from CloudFormation properties to the boto3 calls that create the same thing: the KMS key (with
its key policy), buckets (encryption, versioning, CORS, lifecycle, EventBridge notifications, bucket policies), the
table (key schema, GSIs, stream, SSE, TTL), queues and their DLQs (redrive policy, KMS, queue policies), the secret,
the user pool and its client, the EventBridge rule and its target, and the IAM roles with their policies. Each
resource is created the first time a reference needs it (`physical`), so references decide the order.

Resources the rehearsal plays itself (functions, the OpenSearch domain, the HTTP API, log groups, alarms, the
CloudFront distribution and its parts) are not
created; their Ref/GetAtt resolve to the names and ARNs the deployed ones would have (the domain's endpoint is the
local OpenSearch stand-in's).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from .assembly import Assembly
from .intrinsics import Resolver, UnresolvedError

CREDENTIALS = {"aws_access_key_id": "rehearsal", "aws_secret_access_key": "rehearsal"}  # moto accepts any
CLIENT_CONFIG = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})

# Created in moto, in this order when everything is asked for (references may pull others in earlier).
DATA_PLANE_TYPES = (
    "AWS::KMS::Key", "AWS::S3::Bucket", "AWS::S3::BucketPolicy", "AWS::DynamoDB::GlobalTable",
    "AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::SecretsManager::Secret",
    "AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient",
    "AWS::Events::Rule", "AWS::IAM::Role",
    "AWS::IAM::Policy", "AWS::SageMaker::ModelPackageGroup", "AWS::SageMaker::Pipeline",
)


@dataclass
class Created:
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)


def _hex(stack: str, logical: str, length: int) -> str:
    import hashlib

    return hashlib.sha256(f"{stack}/{logical}".encode()).hexdigest()[:length].upper()


def played_distribution_id(stack: str, logical: str) -> str:
    """The id CloudFront would draw for a distribution (E + 13 characters): fixed per stack and logical id."""
    return f"E{_hex(stack, logical, 13)}"


def played_distribution_domain(stack: str, logical: str) -> str:
    """Its *.cloudfront.net domain, fixed too: a test can name it in web_origin before synthesizing."""
    return f"d{_hex(stack, logical, 13).lower()}.cloudfront.net"


def physical_name(stack: str, logical: str, *, limit: int = 63) -> str:
    """A deterministic name in the style CloudFormation generates (stack-logical), lowercase, within `limit`."""
    name = re.sub(r"[^a-z0-9-]", "-", f"{stack}-{logical}".lower())
    return name[:limit].rstrip("-")


class DataPlane:
    def __init__(self, assembly: Assembly, endpoint: str, *, opensearch_host: str) -> None:
        self.assembly = assembly
        self.endpoint = endpoint
        self.opensearch_host = opensearch_host  # host:port that DomainEndpoint resolves to
        self.created: dict[tuple[str, str], Created] = {}
        self._creating: set[tuple[str, str]] = set()
        # Which KMS key encrypts what (("s3", bucket) / ("sqs", queue name) / ("secretsmanager", arn)): the offline
        # evaluator adds the key permissions these services need from the caller (kms:GenerateDataKey, kms:Decrypt).
        self.kms_keys: dict[tuple[str, str], str] = {}
        self.bucket_policies: dict[str, dict] = {}
        self.access_logging: dict[str, dict] = {}
        self.resolver = Resolver(assembly, self.physical)
        any_stack = next(iter(assembly.stacks.values()))
        self.account = any_stack.environment.account
        self.region = any_stack.environment.region
        self.session = boto3.Session(region_name=self.region, **CREDENTIALS)

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint, config=CLIENT_CONFIG)

    # ---- resolution --------------------------------------------------------------------------------------

    def resolve(self, stack: str, value: Any) -> Any:
        return self.resolver.resolve(stack, value)

    def physical(self, stack: str, logical: str, attribute: str | None) -> Any:
        key = (stack, logical)
        if key not in self.created:
            resource = self.assembly.stack(stack).resources.get(logical)
            if resource is None:
                raise UnresolvedError(f"{stack}: no resource {logical}")
            if key in self._creating:
                # A bucket's name and ARN are known before it exists (the log bucket's policy names the buckets
                # that log into it, which need that policy first): CloudFormation resolves the same way.
                if resource["Type"] == "AWS::S3::Bucket":
                    return self._bucket_names(stack, logical, resource.get("Properties", {}))[attribute or "Ref"]
                raise UnresolvedError(f"{stack}/{logical}: circular reference")
            self._creating.add(key)
            try:
                self.created[key] = self._create(stack, logical, resource)
            finally:
                self._creating.discard(key)
        created = self.created[key]
        if attribute is None:
            return created.ref
        if attribute not in created.attributes:
            raise UnresolvedError(f"{stack}/{logical}: attribute {attribute} is not known to the rehearsal")
        return created.attributes[attribute]

    def create_all(self) -> None:
        for type_ in DATA_PLANE_TYPES:
            for stack, logical, _ in self.assembly.resources(type_):
                self.physical(stack, logical, None)


    def _create(self, stack: str, logical: str, resource: dict) -> Created:
        type_ = resource["Type"]
        props = resource.get("Properties", {})
        method = getattr(self, "_" + type_.replace("AWS::", "").replace("::", "_").lower(), None)
        if method is not None:
            return method(stack, logical, props)
        return self._played(stack, logical, type_, props)

    # ---- resources that are not created in moto ----------------------------------------------------------

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"

    def _played(self, stack: str, logical: str, type_: str, props: dict) -> Created:
        name = physical_name(stack, logical)
        if type_ == "AWS::Lambda::Function":
            name = self.resolve(stack, props.get("FunctionName")) or physical_name(stack, logical, limit=64)
            return Created(name, {"Arn": self._arn("lambda", f"function:{name}")})
        if type_ == "AWS::Logs::LogGroup":
            name = self.resolve(stack, props.get("LogGroupName")) or f"/aws/rehearsal/{name}"
            return Created(name, {"Arn": self._arn("logs", f"log-group:{name}:*")})
        if type_ == "AWS::OpenSearchService::Domain":
            name = self.resolve(stack, props.get("DomainName")) or name[:28]
            arn = self._arn("es", f"domain/{name}")
            return Created(name, {"Arn": arn, "DomainArn": arn, "DomainEndpoint": self.opensearch_host})
        if type_ == "AWS::OpenSearchServerless::Collection":
            name = self.resolve(stack, props.get("Name"))
            return Created(name, {"Arn": self._arn("aoss", f"collection/{name}"), "Id": name,
                                  "CollectionEndpoint": f"https://{self.opensearch_host}"})
        if type_ == "AWS::ApiGatewayV2::Api":
            return Created("rehearsalapi", {"ApiEndpoint": "https://rehearsalapi.execute-api.localhost"})
        if type_ == "AWS::CloudWatch::Alarm":
            name = self.resolve(stack, props.get("AlarmName")) or name
            return Created(name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")})
        if type_ == "AWS::Glue::Job":
            return Created(self.resolve(stack, props.get("Name")) or name, {})
        if type_ == "AWS::CloudFront::Distribution":
            distribution_id = played_distribution_id(stack, logical)
            return Created(distribution_id, {"Id": distribution_id,
                                             "DomainName": played_distribution_domain(stack, logical)})
        if type_ == "AWS::CloudFront::Function":
            function_name = self.resolve(stack, props.get("Name")) or name[:64]
            return Created(function_name, {"FunctionARN": f"arn:aws:cloudfront::{self.account}:function/{function_name}",
                                           "Stage": "LIVE"})
        if type_ == "AWS::CloudFront::OriginAccessControl":
            return Created(f"E{_hex(stack, logical, 13)}", {"Id": f"E{_hex(stack, logical, 13)}"})
        if type_ == "AWS::Lambda::LayerVersion":
            return Created(self._arn("lambda", f"layer:{name[:64]}:1"), {})
        if type_ == "AWS::Cognito::UserPoolDomain":  # Ref is the domain prefix; the hosted UI is not rehearsed
            return Created(self.resolve(stack, props["Domain"]), {})
        return Created(name, {})

    # ---- KMS ---------------------------------------------------------------------------------------------

    def _kms_key(self, stack: str, logical: str, props: dict) -> Created:
        kms = self.client("kms")
        args = {"Policy": json.dumps(self.resolve(stack, props.get("KeyPolicy", {})))}
        for prop, arg in (("Description", "Description"), ("KeyUsage", "KeyUsage"), ("KeySpec", "KeySpec")):
            if prop in props:
                args[arg] = self.resolve(stack, props[prop])
        meta = kms.create_key(**args)["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        return Created(meta["KeyId"], {"Arn": meta["Arn"], "KeyId": meta["KeyId"]})

    def _key_arn(self, key: str) -> str:
        return key if key.startswith("arn:") else self._arn("kms", f"key/{key}")

    # ---- S3 ----------------------------------------------------------------------------------------------

    def _s3_bucket(self, stack: str, logical: str, raw: dict) -> Created:
        props = self.resolve(stack, raw)
        s3 = self.client("s3")
        names = self._bucket_names(stack, logical, props)
        name = names.pop("Ref")
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        if "BucketEncryption" in props:
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
                if rule["ServerSideEncryptionByDefault"].get("KMSMasterKeyID"):
                    self.kms_keys[("s3", name)] = self._key_arn(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"])
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                 **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {})}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]})
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={
                "Status": props["VersioningConfiguration"]["Status"]})
        if "CorsConfiguration" in props:
            rules = [{
                "AllowedMethods": rule["AllowedMethods"], "AllowedOrigins": rule["AllowedOrigins"],
                **({"AllowedHeaders": rule["AllowedHeaders"]} if "AllowedHeaders" in rule else {}),
                **({"ExposeHeaders": rule["ExposedHeaders"]} if "ExposedHeaders" in rule else {}),
                **({"MaxAgeSeconds": rule["MaxAge"]} if "MaxAge" in rule else {}),
            } for rule in props["CorsConfiguration"]["CorsRules"]]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(Bucket=name,
                                       PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "LifecycleConfiguration" in props:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={
                "Rules": [_lifecycle_rule(rule) for rule in props["LifecycleConfiguration"]["Rules"]]})
        notifications = props.get("NotificationConfiguration", {})
        if notifications:
            config: dict[str, Any] = {}
            if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
                config["EventBridgeConfiguration"] = {}
            unknown = set(notifications) - {"EventBridgeConfiguration"}
            if unknown:
                raise UnresolvedError(f"{stack}/{logical}: notification kinds {sorted(unknown)} are not rehearsed")
            s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=config)
        if "LoggingConfiguration" in props:
            self.access_logging[name] = props["LoggingConfiguration"]  # moto refuses it without the bucket policy
        return Created(name, names)

    def _bucket_names(self, stack: str, logical: str, props: dict) -> dict[str, str]:
        name = props.get("BucketName") or physical_name(stack, logical)
        return {"Ref": name, "Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com"}

    def _s3_bucketpolicy(self, stack: str, logical: str, props: dict) -> Created:
        """Kept here, not sent to moto: moto applies a bucket policy's Deny statements without their conditions
        (its documented limit), so the TLS-only statement (Deny s3:* if aws:SecureTransport is false) would refuse
        every request. The functions reach S3 over HTTPS in AWS, where that statement never applies."""
        props = self.resolve(stack, props)
        self.bucket_policies[props["Bucket"]] = props["PolicyDocument"]
        return Created(physical_name(stack, logical))

    # ---- DynamoDB ----------------------------------------------------------------------------------------

    def _dynamodb_globaltable(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        replica = next((r for r in props.get("Replicas", []) if r.get("Region") == self.region), {})
        sse = {**props.get("SSESpecification", {}), **replica.get("SSESpecification", {})}
        return self._table(stack, logical, props, sse)

    def _dynamodb_table(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        return self._table(stack, logical, props, props.get("SSESpecification", {}))

    def _table(self, stack: str, logical: str, props: dict, sse: dict) -> Created:
        ddb = self.client("dynamodb")
        name = props.get("TableName") or physical_name(stack, logical, limit=255)
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
                for index in props["GlobalSecondaryIndexes"]]
        if props.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True,
                                           "StreamViewType": props["StreamSpecification"]["StreamViewType"]}
        if sse.get("SSEEnabled") or sse.get("KMSMasterKeyId"):
            args["SSESpecification"] = {"Enabled": True, "SSEType": sse.get("SSEType", "KMS"),
                                        **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if sse.get("KMSMasterKeyId") else {})}
        table = ddb.create_table(**args)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        return Created(name, {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn")})

    # ---- SQS ---------------------------------------------------------------------------------------------

    _QUEUE_ATTRIBUTES = {
        "KmsMasterKeyId": "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds": "KmsDataKeyReusePeriodSeconds",
        "MessageRetentionPeriod": "MessageRetentionPeriod", "VisibilityTimeout": "VisibilityTimeout",
        "DelaySeconds": "DelaySeconds", "MaximumMessageSize": "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds", "SqsManagedSseEnabled": "SqsManagedSseEnabled",
        "FifoQueue": "FifoQueue", "ContentBasedDeduplication": "ContentBasedDeduplication",
    }

    def _sqs_queue(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        sqs = self.client("sqs")
        name = props.get("QueueName") or physical_name(stack, logical, limit=75)
        if props.get("FifoQueue") and not name.endswith(".fifo"):
            name += ".fifo"
        attributes = {api: str(props[cfn]).lower() if isinstance(props[cfn], bool) else str(props[cfn])
                      for cfn, api in self._QUEUE_ATTRIBUTES.items() if cfn in props}
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        if props.get("KmsMasterKeyId"):
            self.kms_keys[("sqs", name)] = self._key_arn(props["KmsMasterKeyId"])
        arn = self._arn("sqs", name)
        return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _sqs_queuepolicy(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(QueueUrl=url,
                                                    Attributes={"Policy": json.dumps(props["PolicyDocument"])})
        return Created(physical_name(stack, logical))

    # ---- SNS ---------------------------------------------------------------------------------------------

    def _sns_topic(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        sns = self.client("sns")
        name = props.get("TopicName") or physical_name(stack, logical, limit=256)
        attributes = {k: str(props[k]) for k in ("DisplayName", "KmsMasterKeyId") if k in props}
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        if props.get("KmsMasterKeyId"):
            self.kms_keys[("sns", arn)] = self._key_arn(props["KmsMasterKeyId"])
        for subscription in props.get("Subscription", []):
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
        return Created(arn, {"TopicArn": arn, "TopicName": name})

    def _sns_topicpolicy(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        for topic in props["Topics"]:
            self.client("sns").set_topic_attributes(TopicArn=topic, AttributeName="Policy",
                                                    AttributeValue=json.dumps(props["PolicyDocument"]))
        return Created(physical_name(stack, logical))

    # ---- Secrets Manager ---------------------------------------------------------------------------------

    def _secretsmanager_secret(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        secrets = self.client("secretsmanager")
        name = props.get("Name") or physical_name(stack, logical)
        args: dict[str, Any] = {"Name": name}
        if "Description" in props:
            args["Description"] = props["Description"]
        if "KmsKeyId" in props:
            args["KmsKeyId"] = props["KmsKeyId"]
        generate = props.get("GenerateSecretString")
        if generate is not None:  # what CloudFormation does at deploy: Secrets Manager's own generator
            options = {"PasswordLength": int(generate.get("PasswordLength", 32))}
            for flag in ("ExcludePunctuation", "ExcludeNumbers", "ExcludeUppercase", "ExcludeLowercase",
                         "IncludeSpace", "RequireEachIncludedType"):
                if flag in generate:
                    options[flag] = bool(generate[flag])
            if "ExcludeCharacters" in generate:
                options["ExcludeCharacters"] = generate["ExcludeCharacters"]
            password = secrets.get_random_password(**options)["RandomPassword"]
            if "SecretStringTemplate" in generate:
                value = json.loads(generate["SecretStringTemplate"])
                value[generate["GenerateStringKey"]] = password
                password = json.dumps(value)
            args["SecretString"] = password
        elif "SecretString" in props:
            args["SecretString"] = props["SecretString"]
        arn = secrets.create_secret(**args)["ARN"]
        if props.get("KmsKeyId"):
            self.kms_keys[("secretsmanager", arn)] = self._key_arn(props["KmsKeyId"])
        return Created(arn, {"Id": arn})

    # ---- Cognito -----------------------------------------------------------------------------------------

    def _by_input_shape(self, client, operation: str, props: dict, renames: dict[str, str]) -> tuple[dict, list]:
        members = client.meta.service_model.operation_model(operation).input_shape.members
        args, dropped = {}, []
        for key, value in props.items():
            key = renames.get(key, key)
            (args.__setitem__(key, value) if key in members else dropped.append(key))
        return args, dropped

    def _cognito_userpool(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        idp = self.client("cognito-idp")
        args, dropped = self._by_input_shape(idp, "CreateUserPool", props, {"UserPoolName": "PoolName"})
        args.setdefault("PoolName", physical_name(stack, logical, limit=128))
        args.pop("UserPoolTags", None)
        pool = idp.create_user_pool(**args)["UserPool"]
        return Created(pool["Id"], {
            "Arn": pool["Arn"], "ProviderName": f"cognito-idp.{self.region}.amazonaws.com/{pool['Id']}",
            "ProviderURL": f"https://cognito-idp.{self.region}.amazonaws.com/{pool['Id']}", "UserPoolId": pool["Id"],
            "NotRehearsed": dropped})

    def _cognito_userpoolclient(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        idp = self.client("cognito-idp")
        args, dropped = self._by_input_shape(idp, "CreateUserPoolClient", props, {})
        args.setdefault("ClientName", physical_name(stack, logical, limit=128))
        client = idp.create_user_pool_client(**args)["UserPoolClient"]
        return Created(client["ClientId"], {"ClientSecret": client.get("ClientSecret"), "NotRehearsed": dropped})

    # ---- EventBridge -------------------------------------------------------------------------------------

    def _events_rule(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        events = self.client("events")
        name = props.get("Name") or physical_name(stack, logical, limit=64)
        args = {"Name": name, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            args["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            args["ScheduleExpression"] = props["ScheduleExpression"]
        if "Description" in props:
            args["Description"] = props["Description"]
        arn = events.put_rule(**args)["RuleArn"]
        targets = [{k: v for k, v in target.items() if k in ("Id", "Arn", "Input", "InputPath", "RoleArn",
                                                              "DeadLetterConfig", "RetryPolicy", "SqsParameters")}
                   for target in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=name, Targets=targets)
        return Created(name, {"Arn": arn})

    # ---- SageMaker (moto records them; it runs no pipeline) ---------------------------------------------------

    def _sagemaker_modelpackagegroup(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        name = props["ModelPackageGroupName"]
        arn = self.client("sagemaker").create_model_package_group(
            ModelPackageGroupName=name,
            ModelPackageGroupDescription=props.get("ModelPackageGroupDescription", ""))["ModelPackageGroupArn"]
        return Created(name, {"ModelPackageGroupArn": arn})

    def _sagemaker_pipeline(self, stack: str, logical: str, props: dict) -> Created:
        """CreatePipeline with the definition body as CloudFormation resolves it (a JSON string)."""
        props = self.resolve(stack, props)
        body = props["PipelineDefinition"]["PipelineDefinitionBody"]
        json.loads(body)  # the resolved definition must still be JSON
        arn = self.client("sagemaker").create_pipeline(
            PipelineName=props["PipelineName"], PipelineDisplayName=props.get("PipelineDisplayName", props["PipelineName"]),
            PipelineDefinition=body, RoleArn=props["RoleArn"],
            PipelineDescription=props.get("PipelineDescription", ""))["PipelineArn"]
        return Created(props["PipelineName"], {"PipelineName": props["PipelineName"], "PipelineArn": arn})

    # ---- IAM ---------------------------------------------------------------------------------------------

    def _iam_role(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        iam = self.client("iam")
        name = props.get("RoleName") or physical_name(stack, logical, limit=64)
        args = {"RoleName": name, "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"])}
        if "Path" in props:
            args["Path"] = props["Path"]
        role = iam.create_role(**args)["Role"]
        for policy in props.get("Policies", []):
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                PolicyDocument=json.dumps(policy["PolicyDocument"]))
        for arn in props.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return Created(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _iam_policy(self, stack: str, logical: str, props: dict) -> Created:
        props = self.resolve(stack, props)
        for role in props.get("Roles", []):
            self.client("iam").put_role_policy(RoleName=role, PolicyName=props["PolicyName"],
                                               PolicyDocument=json.dumps(props["PolicyDocument"]))
        return Created(props["PolicyName"])

    def role_statements(self, role_name: str) -> list[tuple[str, dict]]:
        """Every statement the role carries, as (policy name, statement), read back from moto (inline policies,
        and the documents of attached managed policies)."""
        iam = self.client("iam")
        statements: list[tuple[str, dict]] = []
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            statements += [(name, s) for s in _statements(document)]
        for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
            statements += [(attached["PolicyName"], s) for s in _statements(version["PolicyVersion"]["Document"])]
        return statements


def _statements(document: Any) -> list[dict]:
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _lifecycle_rule(rule: dict) -> dict:
    out: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule["Status"]}
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
    elif "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return out
