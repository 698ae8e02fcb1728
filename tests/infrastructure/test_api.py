from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

pytestmark = pytest.mark.infrastructure

CONCERNS = ("storage", "auth", "ingest", "search", "api", "analysis", "ml")

PUBLIC_ROUTES = {"GET /openapi.json"}


def _routes(synthesized) -> dict[str, dict]:
    routes = synthesized.template("api").find_resources("AWS::ApiGatewayV2::Route")
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in routes.values()}


def _published_operations() -> dict[str, dict]:
    """The OpenAPI document the API serves at /openapi.json, built in-process from handlers/api.py."""
    from photo_organizer.handlers.api import openapi_json

    document = json.loads(openapi_json())
    return {f"{method.upper()} {path}": operation
            for path, operations in document["paths"].items() for method, operation in operations.items()}


def test_every_published_operation_has_a_route_with_the_jwt_authorizer_and_nothing_else_is_routed(synthesized):
    """Route parity: the people, faces, merge and consent operations were published but had no route (404 at
    the gateway); a route the document does not publish would be an undocumented door."""
    routes = _routes(synthesized)
    published = _published_operations()
    assert {"PATCH /people/{person_id}", "POST /people/{person_id}/merge", "POST /faces/{face_id}/move",
            "PUT /settings/biometrics", "GET /people"} <= set(published)
    assert set(routes) == set(published) | PUBLIC_ROUTES
    for key in published:
        assert routes[key]["AuthorizationType"] == "JWT", key
        assert routes[key]["AuthorizerId"]["Ref"].startswith("HttpApiCognitoJwt"), key
    # the document's own security requirement agrees: every operation wants the bearer token
    from photo_organizer.handlers.api import openapi_json

    assert json.loads(openapi_json())["security"] == [{"bearer": []}]
    assert all(op.get("security", [{"bearer": []}]) == [{"bearer": []}] for op in published.values())


def test_every_route_reaches_the_one_api_function(synthesized):
    template = synthesized.template_json("api")
    integrations = {lid: r["Properties"] for lid, r in template["Resources"].items()
                    if r["Type"] == "AWS::ApiGatewayV2::Integration"}
    assert len(integrations) == 1
    [integration] = integrations.values()
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["IntegrationUri"]["Fn::GetAtt"][0].startswith("ApiFunction")
    for key, route in _routes(synthesized).items():
        assert route["Target"] == {"Fn::Join": ["", ["integrations/", {"Ref": next(iter(integrations))}]]}, key


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
            "AllowHeaders": ["Authorization", "Content-Type", "Idempotency-Key"],
        }),
    })


def test_cors_allows_every_method_a_published_operation_uses(synthesized):
    """PATCH /people/{id} and PUT /settings/biometrics were refused by the browser's preflight."""
    [api] = synthesized.template("api").find_resources("AWS::ApiGatewayV2::Api").values()
    allowed = set(api["Properties"]["CorsConfiguration"]["AllowMethods"])
    used = {key.split(" ", 1)[0] for key in _published_operations()} | {"GET"}
    assert used <= allowed, used - allowed
    assert {"PATCH", "PUT"} <= allowed and "*" not in allowed


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
        "LogGroupName": {"Fn::Join": ["", ["/photo-organizer/dev/api-access-", Match.any_value()]]},
        "KmsKeyId": Match.any_value(),
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


# ---- search cursor key ---------------------------------------------------------------------------------------

CURSOR_SECRET_ENV = "PO_CURSOR_SECRET_ARN"


def _cursor_secret_id(synthesized) -> str:
    secrets = synthesized.template("api").find_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 1, secrets
    return next(iter(secrets))


def _allow_statements(synthesized):
    """(concern, policy logical id, attached role refs, statement) of every Allow in every IAM policy."""
    for concern in CONCERNS:
        template = synthesized.template_json(concern)
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::IAM::Policy":
                roles = [r.get("Ref") for r in resource["Properties"].get("Roles", [])]
                documents = [resource["Properties"]["PolicyDocument"]]
            elif resource["Type"] == "AWS::IAM::Role":
                roles = [logical_id]
                documents = [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
            else:
                continue
            for document in documents:
                for statement in document["Statement"]:
                    if statement["Effect"] == "Allow":
                        yield concern, logical_id, roles, statement


def _actions(statement) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def _api_role_id(synthesized) -> str:
    roles = [lid for lid in synthesized.template("api").find_resources("AWS::IAM::Role") if lid.startswith("ApiRole")]
    assert len(roles) == 1
    return roles[0]


def test_cursor_key_is_a_generated_secret_encrypted_with_the_app_key(synthesized):
    secret_id = _cursor_secret_id(synthesized)
    secret = synthesized.template_json("api")["Resources"][secret_id]["Properties"]
    assert "SecretString" not in secret, "the key must be generated by Secrets Manager, never written in a template"
    assert secret["GenerateSecretString"] == {"PasswordLength": 64, "ExcludePunctuation": True}
    # The app's customer-managed key, from the storage stack (a weak reference names its ARN output).
    assert "DataKey" in json.dumps(secret["KmsKeyId"]) and "Arn" in json.dumps(secret["KmsKeyId"])
    rules = synthesized.template_json("api")["Resources"][secret_id]["Metadata"]["cdk_nag"]["rules_to_suppress"]
    assert [r["id"] for r in rules] == ["AwsSolutions-SMG4"]


def test_only_the_api_function_is_given_the_cursor_secret_arn(synthesized):
    secret_id = _cursor_secret_id(synthesized)
    given = {
        (concern, fn["Properties"]["Handler"]): fn["Properties"]["Environment"]["Variables"][CURSOR_SECRET_ENV]
        for concern in CONCERNS
        for fn in synthesized.template(concern).find_resources("AWS::Lambda::Function").values()
        if CURSOR_SECRET_ENV in fn["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert given == {("api", "photo_organizer.handlers.api.handler"): {"Ref": secret_id}}


def test_only_the_api_role_can_read_the_cursor_key(synthesized):
    secret_id, api_role = _cursor_secret_id(synthesized), _api_role_id(synthesized)
    secret_reads = [
        (concern, roles, statement) for concern, _, roles, statement in _allow_statements(synthesized)
        if any(a.startswith("secretsmanager:") for a in _actions(statement))
    ]
    assert secret_reads == [("api", [api_role], {
        "Action": "secretsmanager:GetSecretValue", "Effect": "Allow", "Resource": {"Ref": secret_id},
    })]
    via_secrets_manager = [
        (concern, roles, statement) for concern, _, roles, statement in _allow_statements(synthesized)
        if "kms:ViaService" in json.dumps(statement.get("Condition", {}))
    ]
    assert len(via_secrets_manager) == 1
    concern, roles, statement = via_secrets_manager[0]
    assert (concern, roles, _actions(statement)) == ("api", [api_role], ["kms:Decrypt"])
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}
    assert "DataKey" in json.dumps(statement["Resource"])


def test_secrets_manager_may_use_the_app_key_only_on_the_accounts_behalf(synthesized):
    """The key policy statement the Secret construct adds: the account's IAM policies still decide who reads."""
    key = next(iter(synthesized.template("storage").find_resources("AWS::KMS::Key").values()))
    via = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
           if s.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")]
    assert len(via) == 1
    assert via[0]["Principal"] == {"AWS": f"arn:aws:iam::{synthesized.stacks.settings.account}:root"}
    assert via[0]["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}


def test_serverless_search_api_also_reads_its_cursor_key_from_the_secret(synthesized_serverless):
    functions = synthesized_serverless.template("api").find_resources("AWS::Lambda::Function", {
        "Properties": {"Handler": "photo_organizer.handlers.api.handler"}})
    (api_function,) = functions.values()
    secret_id = _cursor_secret_id(synthesized_serverless)
    assert api_function["Properties"]["Environment"]["Variables"][CURSOR_SECRET_ENV] == {"Ref": secret_id}


def test_only_the_api_function_ships_the_embedding_model(synthesized):
    """45 MB of MiniLM weights serve query embedding only: the validator and the indexer load faster without."""
    shipped = {}
    for concern in CONCERNS:
        for fn in synthesized.template(concern).find_resources("AWS::Lambda::Function").values():
            key = fn["Properties"]["Code"]["S3Key"]
            if not isinstance(key, str) or not key.endswith(".zip"):
                continue  # CDK's own helper functions (log retention, custom resources)
            staged = synthesized.assembly_dir / f"asset.{key.removesuffix('.zip')}"
            if (staged / "photo_organizer").is_dir() or (staged / "index.py").is_file():  # a build, or the stub
                shipped[fn["Properties"]["Handler"]] = (staged / "photo_organizer_models").is_dir()
    assert shipped == {
        "photo_organizer.handlers.api.handler": True,
        "photo_organizer.handlers.ingest.handler": False,
        "photo_organizer.handlers.indexer.handler": False,
        "photo_organizer.handlers.opensearch_security.handler": False,
        "photo_organizer.handlers.feedback.handler": False,
        "photo_organizer.handlers.training_steps.export_handler": False,
        "photo_organizer.handlers.training_steps.reapply_handler": False,
    }
