"""From a recorded AWS call to the IAM permissions it needs (action from the service model's signing name and the
operation, resource ARN built per operation), including the KMS permissions that S3, SQS and Secrets Manager
need from the caller when they encrypt with a customer-managed key on its behalf (server-side; no client call
shows them). DynamoDB's own use of the table key goes through its grant and needs nothing from the caller.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from .policy import Need

# S3 operations whose IAM action is not s3:<Operation>.
_S3_ACTIONS = {
    "HeadObject": "GetObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket",
    "HeadBucket": "ListBucket", "ListObjectVersions": "ListBucketVersions",
    "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject",
    "UploadPartCopy": "PutObject", "ListParts": "ListMultipartUploadParts", "CopyObject": "PutObject",
}
_S3_BUCKET_OPERATIONS = ("ListObjectsV2", "ListObjects", "ListObjectVersions", "HeadBucket")
_VERSIONED = {"GetObject": "GetObjectVersion", "DeleteObject": "DeleteObjectVersion",
              "GetObjectTagging": "GetObjectVersionTagging", "PutObjectTagging": "PutObjectVersionTagging",
              "HeadObject": "GetObjectVersion"}
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
_NO_PERMISSION = {("sts", "GetCallerIdentity")}


class CallContext:
    """What the mapping needs to know about the deployment (account, region, which key encrypts what)."""

    def __init__(self, account: str, region: str, kms_keys: dict[tuple[str, str], str]) -> None:
        self.account = account
        self.region = region
        self.kms_keys = kms_keys

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


def needs_of(call: dict, ctx: CallContext) -> list[Need]:
    service, operation, params = call["service"], call["operation"], call.get("params") or {}
    prefix = call.get("signing_name") or service
    why = f"{service}.{operation}" + (f" (presigned {call['presigned']})" if call.get("presigned") else "")
    if (service, operation) in _NO_PERMISSION:
        return []
    if service == "s3":
        return _s3(operation, params, ctx, why)
    if service == "dynamodb":
        return _dynamodb(operation, params, ctx, why)
    if service == "dynamodbstreams":
        return [Need(f"dynamodb:{operation}", params.get("StreamArn") or _stream_of(params, ctx), why=why)]
    if service == "sqs":
        return _sqs(operation, params, ctx, why)
    if service == "secretsmanager":
        secret = params.get("SecretId", "*")
        arn = secret if secret.startswith("arn:") else ctx.arn("secretsmanager", f"secret:{secret}")
        needs = [Need(f"secretsmanager:{operation}", arn, why=why)]
        key = ctx.kms_keys.get(("secretsmanager", arn))
        if key and operation == "GetSecretValue":
            needs.append(Need("kms:Decrypt", key, (("kms:ViaService", f"secretsmanager.{ctx.region}.amazonaws.com"),),
                              why=f"{why}: the secret is encrypted with a customer-managed key"))
        return needs
    if service == "kms":
        key = params.get("KeyId", "*")
        return [Need(f"kms:{operation}", key if key.startswith("arn:") else ctx.arn("kms", f"key/{key}"), why=why)]
    if service == "cloudwatch":  # signs as "monitoring"; PutMetricData is allowed per namespace by a condition
        context = (("cloudwatch:namespace", params["Namespace"]),) if "Namespace" in params else ()
        return [Need(f"cloudwatch:{operation}", "*", context, why)]
    if service == "sagemaker" and "PipelineName" in params:  # names are lowercase in SageMaker ARNs
        return [Need(f"sagemaker:{operation}", ctx.arn("sagemaker", f"pipeline/{params['PipelineName'].lower()}"),
                     why=why)]
    if service == "cognito-idp" and "UserPoolId" in params:  # the Admin* calls name the pool, never the user
        return [Need(f"cognito-idp:{operation}", ctx.arn("cognito-idp", f"userpool/{params['UserPoolId']}"), why=why)]
    if service == "rekognition" and "CollectionId" in params:
        return [Need(f"rekognition:{operation}", ctx.arn("rekognition", f"collection/{params['CollectionId']}"), why=why)]
    return [Need(f"{prefix}:{operation}", "*", why=why)]


def _s3(operation: str, params: dict, ctx: CallContext, why: str) -> list[Need]:
    bucket = params.get("Bucket", "")
    needs: list[Need] = []
    if operation in _S3_BUCKET_OPERATIONS:
        context = (("s3:prefix", params["Prefix"]),) if "Prefix" in params else ()
        return [Need(f"s3:{_S3_ACTIONS[operation]}", f"arn:aws:s3:::{bucket}", context, why)]
    if operation == "DeleteObjects":
        for item in params.get("Delete", {}).get("Objects", []):
            action = "DeleteObjectVersion" if item.get("VersionId") else "DeleteObject"
            needs.append(Need(f"s3:{action}", f"arn:aws:s3:::{bucket}/{item['Key']}", why=why))
        return needs
    if "Key" not in params:
        return [Need(f"s3:{_S3_ACTIONS.get(operation, operation)}", f"arn:aws:s3:::{bucket}", why=why)]
    action = _VERSIONED[operation] if params.get("VersionId") and operation in _VERSIONED else \
        _S3_ACTIONS.get(operation, operation)
    needs.append(Need(f"s3:{action}", f"arn:aws:s3:::{bucket}/{params['Key']}", why=why))
    key = ctx.kms_keys.get(("s3", bucket))
    via = (("kms:ViaService", f"s3.{ctx.region}.amazonaws.com"),)
    if operation in ("PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy") and key:
        needs.append(Need("kms:GenerateDataKey", key, via, f"{why}: SSE-KMS on {bucket}"))
    if operation in ("GetObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload") and key:
        needs.append(Need("kms:Decrypt", key, via, f"{why}: SSE-KMS on {bucket}"))
    if operation in ("CopyObject", "UploadPartCopy"):
        source = params.get("CopySource")
        if isinstance(source, dict):
            src_bucket, src_key, version = source["Bucket"], source["Key"], source.get("VersionId")
        else:
            path, _, query = unquote(str(source)).lstrip("/").partition("?versionId=")
            src_bucket, _, src_key = path.partition("/")
            version = query or None
        action = "GetObjectVersion" if version else "GetObject"
        needs.append(Need(f"s3:{action}", f"arn:aws:s3:::{src_bucket}/{src_key}", why=f"{why}: copy source"))
        src_kms = ctx.kms_keys.get(("s3", src_bucket))
        if src_kms:
            needs.append(Need("kms:Decrypt", src_kms, via, f"{why}: SSE-KMS on the copy source"))
    return needs


def _table_arn(ctx: CallContext, table: str) -> str:
    return table if table.startswith("arn:") else ctx.arn("dynamodb", f"table/{table}")


def _dynamodb(operation: str, params: dict, ctx: CallContext, why: str) -> list[Need]:
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Need(f"dynamodb:{operation}", _table_arn(ctx, t), why=why) for t in params.get("RequestItems", {})]
    if operation == "TransactWriteItems":
        return [Need(f"dynamodb:{_TRANSACT[kind]}", _table_arn(ctx, body["TableName"]), why=why)
                for item in params.get("TransactItems", []) for kind, body in item.items()]
    if operation == "TransactGetItems":
        return [Need("dynamodb:GetItem", _table_arn(ctx, item["Get"]["TableName"]), why=why)
                for item in params.get("TransactItems", [])]
    table = _table_arn(ctx, params.get("TableName", "*"))
    if params.get("IndexName"):
        table = f"{table}/index/{params['IndexName']}"
    # The partition key of a single-item call, for statements limited by dynamodb:LeadingKeys.
    key = params.get("Key") or params.get("Item") or {}
    partition = key.get("PK", {}).get("S") if isinstance(key.get("PK"), dict) else None
    context = (("dynamodb:LeadingKeys", partition),) if partition and operation in _ITEM_OPERATIONS else ()
    return [Need(f"dynamodb:{operation}", table, context, why=why)]


_ITEM_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem"})


def _stream_of(params: dict, ctx: CallContext) -> str:
    return ctx.arn("dynamodb", f"table/{params.get('TableName', '*')}/stream/*")


def _queue(params: dict) -> str:
    return params.get("QueueName") or params.get("QueueUrl", "").rstrip("/").rsplit("/", 1)[-1]


def _sqs(operation: str, params: dict, ctx: CallContext, why: str) -> list[Need]:
    name = _queue(params)
    arn = ctx.arn("sqs", name)
    action = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
              "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}.get(operation, operation)
    needs = [Need(f"sqs:{action}", arn, why=why)]
    key = ctx.kms_keys.get(("sqs", name))
    via = (("kms:ViaService", f"sqs.{ctx.region}.amazonaws.com"),)
    if key and action == "SendMessage":
        needs += [Need("kms:GenerateDataKey", key, via, f"{why}: SSE-KMS queue"),
                  Need("kms:Decrypt", key, via, f"{why}: SSE-KMS queue (data key reuse)")]
    if key and action == "ReceiveMessage":
        needs.append(Need("kms:Decrypt", key, via, f"{why}: SSE-KMS queue"))
    return needs


def opensearch_needs(method: str, path: str, domain_arn: str, service: str) -> list[Need]:
    """An HTTP request to the domain (es) needs es:ESHttp<Method> on the domain ARN plus the request path; a
    Serverless collection (aoss) needs aoss:APIAccessAll on the collection."""
    if service == "aoss":
        return [Need("aoss:APIAccessAll", domain_arn, why=f"{method} {path}")]
    verb = method.capitalize()
    return [Need(f"es:ESHttp{verb}", f"{domain_arn}/{path.lstrip('/')}", why=f"{method} {path}")]


def event_source_needs(kind: str, source_arn: str, ctx: CallContext, queue_name: str | None = None) -> list[Any]:
    """What the Lambda service does with the function's role for an event source mapping (AWS documents these as
    the execution role's required permissions): poll an SQS queue, or read a DynamoDB stream."""
    why = f"event source mapping ({kind})"
    if kind == "sqs":
        needs = [Need(f"sqs:{a}", source_arn, why=why) for a in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")]
        key = ctx.kms_keys.get(("sqs", queue_name or source_arn.rsplit(":", 1)[-1]))
        if key:
            needs.append(Need("kms:Decrypt", key, (("kms:ViaService", f"sqs.{ctx.region}.amazonaws.com"),), why))
        return needs
    # Lambda's own check when it creates the mapping asks for these four "on your stream" (ListStreams included).
    return [Need(f"dynamodb:{a}", source_arn, why=why)
            for a in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")]
