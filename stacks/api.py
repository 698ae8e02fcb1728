"""ApiStack: HTTP API with a Cognito JWT authorizer in front of the one api function."""

from __future__ import annotations

import json

import jsii
from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from stacks.monitoring import FIVE_MINUTES, notify
from stacks.settings import Settings
from stacks.search import search_access, search_environment, serverless_reader_policy, suppress_search_wildcards
from stacks.shared import (
    AuthOutputs, PhotoOrganizerFunction, SearchOutputs, StorageOutputs, app_log_group, common_environment, suppress,
    suppress_grant_wildcards,
)
from stacks.storage import ORIGINALS_PREFIX, QUARANTINE_PREFIX

PREVIEWS_PREFIX = "previews/"
THUMBNAILS_PREFIX = "thumbnails/"


def search_paths(search: SearchOutputs) -> tuple[str, ...]:
    """The request paths the API's searches use on a domain (none on Serverless, where the data access policy
    decides): `<alias>*/_search` (searches, suggestions), `<alias>*/_count`, and `_msearch` (hybrid keyword + knn
    in one request, whose index is named in its body). Nothing else of the domain: no writes, no _bulk, no admin."""
    if search.service != "es":
        return ()
    domain = search.resource_arn
    return (f"{domain}/{search.alias}*/_search", f"{domain}/{search.alias}*/_count", f"{domain}/_msearch")

API_HANDLER = "photo_organizer.handlers.api.handler"
API_5XX_PERCENT = 5
API_5XX_MIN_REQUESTS = 20  # below this, one failed request out of a handful is not a rate

# (method, path, needs a signed-in user): every operation of the OpenAPI document that handlers/api.py publishes
# (tests/infrastructure/test_api.py builds that document and compares), plus the public document itself.
_GET, _POST, _PUT, _PATCH, _DELETE = (apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST, apigwv2.HttpMethod.PUT,
                                      apigwv2.HttpMethod.PATCH, apigwv2.HttpMethod.DELETE)
ROUTES = (
    (_POST, "/uploads", True),
    (_GET, "/photos", True),
    (_GET, "/photos/months", True),
    (_GET, "/photos/{photo_id}", True),
    (_DELETE, "/photos/{photo_id}", True),
    (_GET, "/people", True),
    (_PATCH, "/people/{person_id}", True),
    (_GET, "/people/{person_id}/photos", True),
    (_POST, "/people/{person_id}/merge", True),
    (_POST, "/faces/{face_id}/move", True),
    (_POST, "/faces/{face_id}/not-person", True),
    (_GET, "/settings/biometrics", True),
    (_PUT, "/settings/biometrics", True),
    (_POST, "/feedback", True),
    (_GET, "/feedback", True),
    (_DELETE, "/feedback/{feedback_id}", True),
    (_GET, "/review", True),
    (_GET, "/analysis/progress", True),
    (_DELETE, "/account", True),  # erasure: blobs, items, the face collection, then the caller's Cognito user
    (_GET, "/openapi.json", False),
)
SEARCH_ROUTES = (
    (_GET, "/search", True),
    (_GET, "/search/suggest", True),
)
# Preflight: every method a route uses (OPTIONS is answered by API Gateway itself).
CORS_METHODS = sorted({str(method.value) for method, _, _ in ROUTES + SEARCH_ROUTES} | {"OPTIONS"})
CURSOR_KEY_ROTATION_REASON = (
    "The secret is the HMAC key of search cursors, which live for one results session: nothing is stored under "
    "it. Rotating it would need a custom rotation function and would only void the cursors in flight (each "
    "container reads the key once at start); replace the secret to roll it."
)
PUBLIC_ROUTE_REASON = (
    "GET /openapi.json serves the public API schema (no user data, no secrets) so that clients and docs "
    "tools can read it before signing in; every data route uses the Cognito JWT authorizer."
)

_ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "sub": "$context.authorizer.claims.sub",
})


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(_ACCESS_LOG_FORMAT)


class ApiStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: Settings, storage: StorageOutputs,
                 auth: AuthOutputs, search: SearchOutputs | None = None, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)

        environment = common_environment(settings, storage)
        environment["PO_UPLOAD_URL_TTL_SECONDS"] = str(settings.upload_url_ttl_seconds)
        environment["PO_ANALYSIS_VERSION"] = str(settings.analysis_version)  # GET /analysis/progress counts by it
        environment["PO_USER_POOL_ID"] = auth.user_pool_id  # DELETE /account deletes the caller's own user last
        if search is not None:
            environment.update(search_environment(search))
            cursor_key = self._cursor_key(settings, storage)
            environment["PO_CURSOR_SECRET_ARN"] = cursor_key.secret_arn
        api_function = PhotoOrganizerFunction(
            self, "Api",
            settings=settings, storage=storage, handler=API_HANDLER, log_name="api",
            memory_mb=settings.api_memory_mb, timeout_seconds=settings.api_timeout_seconds,
            environment=environment,
            description="Photo Organizer HTTP API (uploads, photos, people, search)",
            embeds_text=True,  # search queries are embedded with the packed MiniLM model
            failure_path="the HTTP API invokes it synchronously and returns its error to the client, who retries.",
        )
        self._grant(api_function, storage)
        self._grant_forget_faces(api_function.role, settings)
        self._grant_delete_login(api_function.role, auth)
        if search is not None:
            # The API function serves /search itself: read-only signed requests to the index.
            api_function.role.add_to_principal_policy(iam.PolicyStatement(
                actions=list(search.reader_actions),
                resources=list(search_paths(search)) or [search.resource_arn],
            ))
            if search_paths(search):
                NagSuppressions.add_resource_suppressions(api_function.role, [NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="The API searches our one index: `<alias>*` stands for the alias and the versioned index "
                           "names behind it (photos-v<n>), unknown at deploy time; only _search and _count under them.",
                    applies_to=[f"Resource::{path}" for path in search_paths(search) if "*" in path],
                )], apply_to_children=True)
            else:
                suppress_search_wildcards(api_function.role, search, "The API searches our one index")
            self._grant_cursor_key(api_function.role, cursor_key, storage)
            # Read-only access inside the index, granted here where the role exists (never by the earlier stack).
            if search.service == "es":
                search_access(self, "ApiSearchAccess", search, access="reader", roles=[api_function.role.role_arn])
            else:
                serverless_reader_policy(self, "ApiCollectionDataAccess", search, api_function.role)

        api = apigwv2.HttpApi(
            self, "HttpApi",
            api_name=f"{settings.prefix}-api",
            create_default_stage=False,
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(settings.browser_origins),  # + the web app's origin (stacks/web.py)
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                allow_methods=[apigwv2.CorsHttpMethod(method) for method in CORS_METHODS],
                max_age=Duration.hours(1),
            ),
        )
        authorizer = authorizers.HttpJwtAuthorizer(
            "CognitoJwt", auth.issuer_url, jwt_audience=[auth.client_id], authorizer_name="cognito-jwt",
        )
        integration = integrations.HttpLambdaIntegration("ApiFunction", api_function.function)
        for method, path, private in ROUTES + (SEARCH_ROUTES if search is not None else ()):
            routes = api.add_routes(path=path, methods=[method], integration=integration,
                                    authorizer=authorizer if private else apigwv2.HttpNoneAuthorizer())
            if not private:
                for route in routes:
                    suppress(route.node.default_child, ("AwsSolutions-APIG4", PUBLIC_ROUTE_REASON))

        access_logs = app_log_group(self, "AccessLogs", settings=settings, key=storage.key, name="api-access")
        stage = apigwv2.HttpStage(
            self, "DefaultStage",
            http_api=api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=settings.api_throttle_rate_limit,
                                              burst_limit=settings.api_throttle_burst_limit),
            access_log_settings=_AccessLogSettings(access_logs),
        )

        self._server_error_alarm(api, storage)

        self.api = api
        self.api_function = api_function.function
        CfnOutput(self, "ApiUrl", value=stage.url, description="Base URL of the HTTP API")
        CfnOutput(self, "ApiFunctionName", value=api_function.function.function_name)

    def _server_error_alarm(self, api: apigwv2.HttpApi, storage: StorageOutputs) -> cloudwatch.Alarm:
        """5xx answers as a share of all requests, over five minutes, once there are enough requests to judge."""
        requests = api.metric_count(period=FIVE_MINUTES, statistic="Sum")
        errors = api.metric_server_error(period=FIVE_MINUTES, statistic="Sum")
        rate = cloudwatch.MathExpression(
            expression=f"IF(requests >= {API_5XX_MIN_REQUESTS}, 100 * FILL(errors, 0) / requests, 0)",
            using_metrics={"requests": requests, "errors": errors},
            label="5xx % of requests",
            period=FIVE_MINUTES,
        )
        alarm = cloudwatch.Alarm(
            self, "Api5xxRateAlarm",
            alarm_description=f"More than {API_5XX_PERCENT}% of API requests failed with a 5xx in five minutes "
                              "(the API function's errors, timeouts or a dependency)",
            metric=rate,
            threshold=API_5XX_PERCENT,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        notify(storage.alarm_topic, alarm)
        return alarm

    def _cursor_key(self, settings: Settings, storage: StorageOutputs) -> secretsmanager.Secret:
        """The HMAC key of search cursors: random, generated by Secrets Manager at deploy (never in a template)."""
        secret = secretsmanager.Secret(
            self, "CursorKey",
            description=f"{settings.prefix}: HMAC key of search result cursors",
            encryption_key=storage.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64,
                                                                        exclude_punctuation=True),
            # Nothing outlives the key: losing it only voids the cursors in flight.
            removal_policy=RemovalPolicy.DESTROY,
        )
        suppress(secret, ("AwsSolutions-SMG4", CURSOR_KEY_ROTATION_REASON))
        return secret

    def _grant_cursor_key(self, role: iam.IRole, secret: secretsmanager.ISecret, storage: StorageOutputs) -> None:
        """What Secret.grant_read grants, on the role's side only: grant_read would also name this role in the
        storage stack's key policy (a ViaService grant), and that stack cannot refer to this one (a cycle). The
        key policy already lets the account's IAM policies use the key."""
        iam.Grant.add_to_principal(grantee=role, actions=["secretsmanager:GetSecretValue"],
                                   resource_arns=[secret.secret_arn])
        iam.Grant.add_to_principal(
            grantee=role, actions=["kms:Decrypt"], resource_arns=[storage.key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"}},
        )

    def _grant_forget_faces(self, role: iam.IRole, settings: Settings) -> None:
        """Withdrawing biometric consent (PUT /settings/biometrics off) deletes the user's Rekognition collection,
        `<face_collection_prefix>-<owner>`, the one the Glue jobs index faces into: DeleteCollection is the only
        Rekognition call of that path (RekognitionAnalyzer.delete_collection), on those collections only."""
        collections_arn = settings.face_collections_arn()
        role.add_to_principal_policy(iam.PolicyStatement(actions=["rekognition:DeleteCollection"],
                                                         resources=[collections_arn]))
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason=(f"Collections are per user ({settings.face_collection_prefix}-<owner>, created by the Glue "
                    "job at run time); the API may only delete them, when a user withdraws consent."),
            applies_to=[f"Resource::{collections_arn}"],
        )], apply_to_children=True)

    def _grant_delete_login(self, role: iam.IRole, auth: AuthOutputs) -> None:
        """Account erasure ends with the caller's own Cognito user (AdminDeleteUser): this action only, on this pool
        only. IAM has no condition key for the target user, so the handler takes the username from the verified
        token alone (handlers/api.py current_login); no other Cognito action (no reads, no listing of users)."""
        role.add_to_principal_policy(iam.PolicyStatement(actions=["cognito-idp:AdminDeleteUser"],
                                                         resources=[auth.user_pool_arn]))

    def _grant(self, api_function: PhotoOrganizerFunction, storage: StorageOutputs) -> None:
        fn = api_function.function
        originals_objects = f"{ORIGINALS_PREFIX}*"
        # Presigned POST is signed with the function's credentials: S3 checks s3:PutObject on upload.
        storage.originals.grant_put(fn, originals_objects)
        # Not grant_read: it adds s3:List* on the whole bucket, i.e. every owner's keys. The API reads objects it
        # names (signed GETs) and lists only versions under a prefix (ListBucketVersions below).
        api_function.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion"],
            resources=[storage.originals.arn_for_objects(originals_objects)],
        ))
        storage.originals.grant_delete(fn, originals_objects)
        # Deleting a photo also clears its quarantine key (every version), which holds the original when
        # rejected_action=quarantine moved it there: granted whatever the setting, since the delete path always
        # lists that key, and a quarantined photo may outlive a change of the setting.
        quarantine_objects = f"{QUARANTINE_PREFIX}*"
        storage.originals.grant_delete(fn, quarantine_objects)
        api_function.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:DeleteObjectVersion"],
            resources=[storage.originals.arn_for_objects(quarantine_objects)],
        ))
        api_function.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:ListBucketVersions"],
            resources=[storage.originals.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [originals_objects, quarantine_objects]}},
        ))
        # Derivatives likewise: objects under the two prefixes the API signs GETs for and deletes, and version
        # listings under those prefixes only (the delete path lists a key's versions).
        derivative_objects = [f"{PREVIEWS_PREFIX}*", f"{THUMBNAILS_PREFIX}*"]
        api_function.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            resources=[storage.derivatives.arn_for_objects(pattern) for pattern in derivative_objects],
        ))
        api_function.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:ListBucketVersions"],
            resources=[storage.derivatives.bucket_arn],
            conditions={"StringLike": {"s3:prefix": derivative_objects}},
        ))
        storage.table.grant_read_write_data(fn)
        storage.key.grant_encrypt_decrypt(fn)  # includes kms:GenerateDataKey* (server-side encryption on put)
        suppress_grant_wildcards(api_function.role)
        NagSuppressions.add_resource_suppressions(api_function.role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="Object ARNs under the previews/ and thumbnails/ prefixes of our derivatives bucket (named per "
                   "photo, unknown at deploy time).",
            applies_to=[RegexAppliesTo(
                regex=r"/^Resource::[^/]*Derivatives[0-9A-F]{8}\.?Arn[^/]*\/(previews|thumbnails)\/\*$/")],
        )], apply_to_children=True)
