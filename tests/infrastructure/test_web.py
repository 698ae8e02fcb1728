"""WebStack (stacks/web.py): the app's bucket, the CloudFront distribution in front of it, its headers and routing,
the config.json it deploys, and how the web origin reaches the Cognito client and the CORS rules of earlier stacks.

Two Apps of the session: `synthesized` (cdk.json: CloudFront's default domain, logs on, no WAF) and
`synthesized_serverless` (a custom domain with its certificate, a WAF web ACL, logs off)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match

from stacks.settings import Settings, SettingsError
from stacks.web import SPA_ROUTING_FUNCTION, WebBuildMissingError, web_code

from .conftest import WEB_ACL_ARN, WEB_CERTIFICATE_ARN, WEB_DOMAIN

pytestmark = pytest.mark.infrastructure

NODE = shutil.which("node") or "/usr/bin/node"


def render(value) -> str:
    """A template value as text, each reference shown as <logical id.attribute> or <stack output name>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        (kind, arg), = value.items()
        if kind == "Fn::Join":
            return arg[0].join(render(part) for part in arg[1])
        if kind == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if kind == "Ref":
            return f"<{arg}>"
        if kind == "Fn::GetStackOutput":
            return f"<{arg['StackName'].rsplit('-', 1)[-1]}:{arg['OutputName']}>"
    raise AssertionError(f"unexpected template value {value!r}")


def _one(template, type_: str) -> tuple[str, dict]:
    resources = template.find_resources(type_)
    assert len(resources) == 1, (type_, list(resources))
    return next(iter(resources.items()))


def _site_bucket(template) -> tuple[str, dict]:
    [(logical, bucket)] = [(k, r) for k, r in template.find_resources("AWS::S3::Bucket").items()
                           if k.startswith("Site")]
    return logical, bucket


def _csp(template) -> dict[str, list[str]]:
    _, policy = _one(template, "AWS::CloudFront::ResponseHeadersPolicy")
    text = render(policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
                  ["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    directives = [d.split() for d in text.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


# ---- the bucket and the origin ---------------------------------------------------------------------------------


def test_the_site_bucket_is_private_tls_only_and_logs_its_access(synthesized):
    template = synthesized.template("web")
    logical, bucket = _site_bucket(template)
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    # SSE-S3: OAC could read SSE-KMS only through a key policy naming this distribution (see stacks/web.py)
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "site/"
    assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith("Logs")
    assert "WebsiteConfiguration" not in props  # served through CloudFront only, never as an S3 website


def test_the_site_bucket_policy_allows_only_this_distribution_and_denies_plain_http(synthesized):
    template = synthesized.template("web")
    site, _ = _site_bucket(template)
    [policy] = [p for p in template.find_resources("AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": site}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1
    [allow] = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert sorted(allow["Action"]) == ["s3:GetObject", "s3:ListBucket"]
    distribution, _ = _one(template, "AWS::CloudFront::Distribution")
    assert {k: render(v) for k, v in allow["Condition"]["StringEquals"].items()} == {
        "AWS:SourceArn": f"arn:<AWS::Partition>:cloudfront::<AWS::AccountId>:distribution/<{distribution}>"}
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in denies]
    assert all(s["Principal"] == {"AWS": "*"} for s in denies)


def test_the_distribution_reaches_the_bucket_through_origin_access_control_not_an_identity(synthesized):
    template = synthesized.template("web")
    assert not template.find_resources("AWS::CloudFront::CloudFrontOriginAccessIdentity")
    oac_id, oac = _one(template, "AWS::CloudFront::OriginAccessControl")
    assert {k: v for k, v in oac["Properties"]["OriginAccessControlConfig"].items() if k != "Name"} == {
        "OriginAccessControlOriginType": "s3", "SigningBehavior": "always", "SigningProtocol": "sigv4"}
    _, distribution = _one(template, "AWS::CloudFront::Distribution")
    [origin] = distribution["Properties"]["DistributionConfig"]["Origins"]
    site, _ = _site_bucket(template)
    assert origin["DomainName"] == {"Fn::GetAtt": [site, "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}


# ---- the distribution --------------------------------------------------------------------------------------------


def test_the_distribution_is_https_only_with_root_object_routing_function_and_headers(synthesized):
    template = synthesized.template("web")
    _, distribution = _one(template, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert config["DefaultRootObject"] == "index.html"
    assert "CacheBehaviors" not in config and "CustomErrorResponses" not in config  # a missing asset stays 404
    function_id, _ = _one(template, "AWS::CloudFront::Function")
    assert behavior["FunctionAssociations"] == [
        {"EventType": "viewer-request", "FunctionARN": {"Fn::GetAtt": [function_id, "FunctionARN"]}}]
    headers_id, _ = _one(template, "AWS::CloudFront::ResponseHeadersPolicy")
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": headers_id}
    settings = synthesized.stacks.settings
    assert config["PriceClass"] == settings.web_price_class
    assert config["Logging"]["Prefix"] == "cloudfront/"
    assert "ViewerCertificate" not in config and "Aliases" not in config and "WebACLId" not in config


def test_a_custom_domain_gets_its_certificate_tls12_and_the_waf_acl_from_settings(synthesized_serverless):
    template = synthesized_serverless.template("web")
    _, distribution = _one(template, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    assert config["Aliases"] == [WEB_DOMAIN]
    assert config["ViewerCertificate"] == {"AcmCertificateArn": WEB_CERTIFICATE_ARN,
                                           "MinimumProtocolVersion": "TLSv1.2_2021", "SslSupportMethod": "sni-only"}
    assert config["WebACLId"] == WEB_ACL_ARN
    assert "Logging" not in config  # web_logging=false
    _, bucket = _site_bucket(template)
    assert "LoggingConfiguration" not in bucket["Properties"]


def test_security_headers_are_strict(synthesized):
    _, policy = _one(synthesized.template("web"), "AWS::CloudFront::ResponseHeadersPolicy")
    config = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert config["StrictTransportSecurity"] == {"AccessControlMaxAgeSec": 730 * 86400, "IncludeSubdomains": True,
                                                 "Override": True}
    assert config["ContentTypeOptions"] == {"Override": True}
    assert config["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert config["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    assert config["ContentSecurityPolicy"]["Override"] is True


def test_the_content_security_policy_names_exactly_the_app_api_cognito_and_photo_bucket_origins(synthesized):
    csp = _csp(synthesized.template("web"))
    originals = "https://<storage:PublishOutputFnGetAttOriginals63BA965BRegionalDomainNameC9928495>"
    derivatives = "https://<storage:PublishOutputFnGetAttDerivatives5BC92D79RegionalDomainName6C9A34A1>"
    api = "<api:PublishOutputFnGetAttHttpApiF5A9A8A7ApiEndpointD768010F>"
    cognito = "https://<auth:PublishOutputRefUsersHostedUi4D3AB8E18AF4E893>.auth.eu-west-1.amazoncognito.com"
    assert csp == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", derivatives, originals],
        "connect-src": ["'self'", api, cognito, originals],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'", cognito],
    }
    assert not [source for sources in csp.values() for source in sources
                if "*" in source or source in ("'unsafe-inline'", "'unsafe-eval'", "https:", "http:")]


def test_the_csp_references_are_the_api_endpoint_the_hosted_domain_and_the_photo_buckets(synthesized):
    """The stack outputs the CSP names are the attributes they should be (not, say, the upload bucket's ARN)."""
    storage = synthesized.template_json("storage")["Outputs"]
    assert storage["PublishOutputFnGetAttOriginals63BA965BRegionalDomainNameC9928495"]["Value"] == {
        "Fn::GetAtt": ["Originals63BA965B", "RegionalDomainName"]}
    assert storage["PublishOutputFnGetAttDerivatives5BC92D79RegionalDomainName6C9A34A1"]["Value"] == {
        "Fn::GetAtt": ["Derivatives5BC92D79", "RegionalDomainName"]}
    api = synthesized.template_json("api")["Outputs"]
    assert api["PublishOutputFnGetAttHttpApiF5A9A8A7ApiEndpointD768010F"]["Value"] == {
        "Fn::GetAtt": ["HttpApiF5A9A8A7", "ApiEndpoint"]}
    auth = synthesized.template_json("auth")
    assert auth["Outputs"]["PublishOutputRefUsersHostedUi4D3AB8E18AF4E893"]["Value"] == {
        "Ref": "UsersHostedUi4D3AB8E1"}
    assert auth["Resources"]["UsersHostedUi4D3AB8E1"]["Type"] == "AWS::Cognito::UserPoolDomain"


# ---- SPA routing -------------------------------------------------------------------------------------------------


def test_the_deployed_function_code_is_the_routing_script(synthesized):
    _, function = _one(synthesized.template("web"), "AWS::CloudFront::Function")
    props = function["Properties"]
    assert props["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert props["FunctionCode"] == SPA_ROUTING_FUNCTION.read_text()
    assert props["AutoPublish"] is True


ROUTES = {
    "/": "/index.html",
    "/photos": "/index.html",
    "/photos/0f3c9a7e2b": "/index.html",
    "/people/p-1/photos": "/index.html",
    "/search": "/index.html",
    "/index.html": "/index.html",
    "/config.json": "/config.json",
    "/assets/index-1a2b3c.js": "/assets/index-1a2b3c.js",
    "/assets/index-1a2b3c.css": "/assets/index-1a2b3c.css",
    "/favicon.svg": "/favicon.svg",
    "/assets/missing.js": "/assets/missing.js",  # goes to the bucket: a real 404
    "/assets/": "/index.html",
}


@pytest.mark.skipif(not Path(NODE).exists(), reason="node is not installed")
def test_the_routing_function_rewrites_app_routes_and_keeps_files_when_run_with_node():
    """The function's own code, run by node as CloudFront runs it: handler(event) -> request."""
    runner = (
        "const fs = require('fs');"
        "const handler = new Function(fs.readFileSync(process.argv[1], 'utf8') + '\\nreturn handler;')();"
        "const uris = JSON.parse(process.argv[2]);"
        "const out = {};"
        "for (const uri of uris) {"
        "  const request = {method: 'GET', uri, querystring: {}, headers: {host: {value: 'x.cloudfront.net'}}};"
        "  const result = handler({version: '1.0', context: {eventType: 'viewer-request'}, viewer: {ip: '1.2.3.4'},"
        "                          request});"
        "  out[uri] = result.uri;"
        "  if (result.headers.host.value !== 'x.cloudfront.net') throw new Error('headers changed');"
        "}"
        "process.stdout.write(JSON.stringify(out));"
    )
    result = subprocess.run([NODE, "-e", runner, str(SPA_ROUTING_FUNCTION), json.dumps(list(ROUTES))],
                            capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(result.stdout) == ROUTES


def test_the_routing_function_uses_only_what_cloudfront_js_2_allows():
    code = SPA_ROUTING_FUNCTION.read_text()
    assert re.search(r"^function handler\(event\)", code, re.MULTILINE)
    assert not re.search(r"\b(require|import|fetch|setTimeout|XMLHttpRequest)\b", code)
    assert len(code.encode()) < 10 * 1024  # CloudFront Functions' code size limit


# ---- Cognito and CORS --------------------------------------------------------------------------------------------


def _spa_client(synthesized) -> dict:
    _, client = _one(synthesized.template("auth"), "AWS::Cognito::UserPoolClient")
    return client["Properties"]


@pytest.mark.parametrize("app", ["synthesized", "synthesized_serverless"])
def test_the_spa_client_signs_in_with_the_code_flow_and_pkce_only(request, app):
    client = _spa_client(request.getfixturevalue(app))
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert not client.get("GenerateSecret")  # a public client: PKCE, no secret in the browser
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert "implicit" not in json.dumps(client)


def test_a_custom_domain_is_a_callback_logout_url_and_an_allowed_origin_of_api_and_uploads(synthesized_serverless):
    origin = f"https://{WEB_DOMAIN}"
    settings = synthesized_serverless.stacks.settings
    client = _spa_client(synthesized_serverless)
    assert client["CallbackURLs"] == [*settings.oauth_callback_urls, origin + "/"]
    assert client["LogoutURLs"] == [*settings.oauth_logout_urls, origin + "/"]
    api = synthesized_serverless.template_json("api")
    [http_api] = [r for r in api["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert http_api["Properties"]["CorsConfiguration"]["AllowOrigins"] == [*settings.cors_allowed_origins, origin]
    storage = synthesized_serverless.template_json("storage")["Resources"]
    [cors] = storage["Originals63BA965B"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedOrigins"] == [*settings.cors_allowed_origins, origin]


def test_without_a_known_origin_synth_warns_to_set_web_origin_and_the_earlier_stacks_keep_their_lists(synthesized):
    settings = synthesized.stacks.settings
    assert settings.web_public_origin == ""
    assert _spa_client(synthesized)["CallbackURLs"] == list(settings.oauth_callback_urls)
    warnings = Annotations.from_stack(synthesized.stacks.web).find_warning(
        "*", Match.string_like_regexp("web_origin is not set.*"))
    assert len(warnings) == 1


def test_web_origin_setting_joins_callbacks_and_cors_once():
    settings = Settings(web_origin="https://d111111abcdef8.cloudfront.net",
                        cors_allowed_origins=("http://localhost:5173", "https://d111111abcdef8.cloudfront.net"))
    settings.check()
    assert settings.browser_origins == ("http://localhost:5173", "https://d111111abcdef8.cloudfront.net")
    assert settings.spa_callback_urls == ("http://localhost:5173/", "https://d111111abcdef8.cloudfront.net/")
    assert settings.spa_logout_urls == ("http://localhost:5173/", "https://d111111abcdef8.cloudfront.net/")


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"web_origin": "http://d111111abcdef8.cloudfront.net"}, "web_origin"),
    ({"web_origin": "https://d111111abcdef8.cloudfront.net/app"}, "web_origin"),
    ({"web_domain_name": WEB_DOMAIN}, "go together"),
    ({"web_domain_name": WEB_DOMAIN, "web_certificate_arn": WEB_CERTIFICATE_ARN.replace("us-east-1", "eu-west-1")},
     "us-east-1"),
    ({"web_domain_name": WEB_DOMAIN, "web_certificate_arn": WEB_CERTIFICATE_ARN,
      "web_origin": "https://d111111abcdef8.cloudfront.net"}, "not both"),
    ({"web_price_class": "PriceClass_300"}, "web_price_class"),
    ({"web_acl_arn": "arn:aws:wafv2:eu-west-1:111111111111:regional/webacl/x/1"}, "CLOUDFRONT"),
])
def test_bad_web_settings_are_refused(overrides, problem):
    with pytest.raises(SettingsError, match=problem):
        Settings(**overrides).check()


# ---- the deployed files ------------------------------------------------------------------------------------------


def _deployment(synthesized) -> dict:
    _, deployment = _one(synthesized.template("web"), "Custom::CDKBucketDeployment")
    return deployment["Properties"]


def _asset_files(synthesized, key: str) -> dict[str, str]:
    """The files of a deployment source, read from the cloud assembly the way `cdk deploy` zips them."""
    directory = synthesized.assembly_dir / f"asset.{key.removesuffix('.zip')}"
    return {p.relative_to(directory).as_posix(): p.read_text() for p in directory.rglob("*") if p.is_file()}


def test_the_build_is_deployed_to_the_site_bucket_with_revalidation_and_pruning(synthesized, stub_web_dir):
    props = _deployment(synthesized)
    site, _ = _site_bucket(synthesized.template("web"))
    assert props["DestinationBucketName"] == {"Ref": site}
    assert props["Prune"] is True
    assert props["SystemMetadata"] == {"cache-control": "public, max-age=0, must-revalidate"}
    app_files = _asset_files(synthesized, props["SourceObjectKeys"][0])
    assert app_files == {p.relative_to(stub_web_dir).as_posix(): p.read_text()
                         for p in stub_web_dir.rglob("*") if p.is_file()}


def test_config_json_holds_the_api_url_client_hosted_domain_region_and_redirect_and_no_secret(synthesized):
    props = _deployment(synthesized)
    [config_files] = [_asset_files(synthesized, key) for key in props["SourceObjectKeys"][1:]]
    text = config_files["config.json"]
    for marker, value in props["SourceMarkers"][1].items():
        text = text.replace(marker, render(value))
    config = json.loads(text)
    distribution, _ = _one(synthesized.template("web"), "AWS::CloudFront::Distribution")
    assert config == {
        "backend": "aws",
        "apiUrl": "<api:PublishOutputFnGetAttHttpApiF5A9A8A7ApiEndpointD768010F>",
        "region": "eu-west-1",
        "userPoolClientId": "<auth:PublishOutputRefUsersSpa85E8690B0BB7CE3D>",
        "cognitoDomain": "https://<auth:PublishOutputRefUsersHostedUi4D3AB8E18AF4E893>.auth.eu-west-1.amazoncognito.com",
        "redirectUri": f"https://<{distribution}.DomainName>/",
        "logoutUri": f"https://<{distribution}.DomainName>/",
    }
    auth = synthesized.template_json("auth")
    assert auth["Outputs"]["PublishOutputRefUsersSpa85E8690B0BB7CE3D"]["Value"] == {"Ref": "UsersSpa85E8690B"}
    assert not re.search(r"secret|password|arn:", text, re.IGNORECASE)


def test_config_json_redirects_to_the_custom_domain_when_set(synthesized_serverless):
    props = _deployment(synthesized_serverless)
    [config_files] = [_asset_files(synthesized_serverless, key) for key in props["SourceObjectKeys"][1:]]
    text = config_files["config.json"]
    for marker, value in props["SourceMarkers"][1].items():
        text = text.replace(marker, render(value))
    config = json.loads(text)
    assert config["redirectUri"] == config["logoutUri"] == f"https://{WEB_DOMAIN}/"
    assert f"https://{WEB_DOMAIN}/" in _spa_client(synthesized_serverless)["CallbackURLs"]


def test_synth_refuses_a_missing_web_build(tmp_path):
    with pytest.raises(WebBuildMissingError, match="index.html"):
        web_code(Settings(web_code_dir=str(tmp_path / "missing")))


# ---- cdk-nag -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["synthesized", "synthesized_serverless"])
def test_no_unsuppressed_cdk_nag_findings_in_either_web_configuration(request, app):
    stacks = request.getfixturevalue(app).stacks
    annotations = Annotations.from_stack(stacks.web)
    pattern = Match.string_like_regexp("AwsSolutions-.*")
    findings = annotations.find_error("*", pattern) + annotations.find_warning("*", pattern)
    assert [f"{f.id}: {str(f.entry.data)[:160]}" for f in findings] == []


def test_distribution_suppressions_follow_the_settings(synthesized, synthesized_serverless):
    def suppressed(app) -> set[str]:
        _, distribution = _one(app.template("web"), "AWS::CloudFront::Distribution")
        return {rule["id"] for rule in distribution["Metadata"]["cdk_nag"]["rules_to_suppress"]}

    # Default domain: TLS floor fixed by CloudFront (CFR4), no WAF (CFR2); logs on, so CFR3 is not suppressed.
    assert suppressed(synthesized) == {"AwsSolutions-CFR1", "AwsSolutions-CFR2", "AwsSolutions-CFR4"}
    # Custom domain with TLSv1.2_2021 and a WAF: only the geo restriction and the logs switched off.
    assert suppressed(synthesized_serverless) == {"AwsSolutions-CFR1", "AwsSolutions-CFR3"}
