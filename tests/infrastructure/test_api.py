from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

pytestmark = pytest.mark.infrastructure

PRIVATE_ROUTES = {"POST /uploads", "GET /photos", "GET /photos/{photo_id}", "DELETE /photos/{photo_id}",
                  "GET /search", "GET /search/suggest"}


def _routes(synthesized) -> dict[str, dict]:
    routes = synthesized.template("api").find_resources("AWS::ApiGatewayV2::Route")
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in routes.values()}


def test_data_routes_require_the_cognito_jwt(synthesized):
    routes = _routes(synthesized)
    assert set(routes) == PRIVATE_ROUTES | {"GET /openapi.json"}
    for key in PRIVATE_ROUTES:
        assert routes[key]["AuthorizationType"] == "JWT", key
        assert routes[key]["AuthorizerId"]["Ref"].startswith("HttpApiCognitoJwt"), key


def test_openapi_schema_is_public(synthesized):
    route = _routes(synthesized)["GET /openapi.json"]
    assert route["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in route


def test_jwt_authorizer_trusts_the_user_pool_and_the_spa_client(synthesized):
    authorizer = next(iter(synthesized.template("api").find_resources("AWS::ApiGatewayV2::Authorizer").values()))
    props = authorizer["Properties"]
    assert props["AuthorizerType"] == "JWT"
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    assert "cognito-idp.eu-west-1.amazonaws.com" in str(props["JwtConfiguration"]["Issuer"])
    assert "UsersSpa" in str(props["JwtConfiguration"]["Audience"])


def test_cors_allows_the_spa_origins_and_headers(synthesized):
    settings = synthesized.stacks.settings
    synthesized.template("api").has_resource_properties("AWS::ApiGatewayV2::Api", {
        "ProtocolType": "HTTP",
        "CorsConfiguration": Match.object_like({
            "AllowOrigins": list(settings.cors_allowed_origins),
            "AllowHeaders": ["Authorization", "Content-Type"],
            "AllowMethods": ["GET", "POST", "DELETE", "OPTIONS"],
        }),
    })


def test_default_stage_throttles_and_logs_access(synthesized):
    settings = synthesized.stacks.settings
    synthesized.template("api").has_resource_properties("AWS::ApiGatewayV2::Stage", {
        "StageName": "$default",
        "AutoDeploy": True,
        "DefaultRouteSettings": {"ThrottlingRateLimit": settings.api_throttle_rate_limit,
                                 "ThrottlingBurstLimit": settings.api_throttle_burst_limit},
        "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("requestId")},
    })
    synthesized.template("api").has_resource_properties("AWS::Logs::LogGroup", {
        "LogGroupName": "/photo-organizer/dev/api-access", "KmsKeyId": Match.any_value(),
    })


def test_api_function_configuration(synthesized):
    synthesized.template("api").has_resource_properties("AWS::Lambda::Function", {
        "Runtime": "python3.12",
        "Architectures": ["arm64"],
        "Handler": "photo_organizer.handlers.api.handler",
        "TracingConfig": {"Mode": "Active"},
        "Environment": {"Variables": Match.object_like({
            "PO_BACKEND": "aws",
            "PO_UPLOAD_URL_TTL_SECONDS": str(synthesized.stacks.settings.upload_url_ttl_seconds),
            "PO_TABLE_NAME": Match.any_value(),
        })},
    })


def test_api_function_can_sign_uploads_and_delete_versions(synthesized):
    statements = [
        s for policy in synthesized.template("api").find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"s3:PutObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:ListBucketVersions",
            "kms:GenerateDataKey*", "dynamodb:Query"} <= actions
