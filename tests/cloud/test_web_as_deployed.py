"""The WebStack as deployed (rehearsal): CloudFront reaches the site bucket through origin access control and the
bucket policy lets exactly that distribution read it; the bucket deployment puts the app and a config.json with
the deploy-time values; the Cognito client, the API and the upload bucket accept the web app's origin.

CloudFront itself is not rehearsed (moto has no CloudFront data plane): the distribution is played with a fixed
id and domain (rehearsal.dataplane.played_distribution_*), its viewer-request function is run with node, and its
access to S3 is checked with the rehearsal's offline policy evaluator on the bucket policy as resolved (moto ignores
the conditions of bucket policies). The stage is synthesized with web_origin set to that played domain: the second
deploy of the two-step setup the WebStack documents (stacks/settings.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stacks.web import SPA_ROUTING_FUNCTION

from .rehearsal.assembly import synthesize
from .rehearsal.dataplane import played_distribution_domain, played_distribution_id
from .rehearsal.policy import Need, evaluate, for_service
from .rehearsal.stage import Rehearsal

pytestmark = pytest.mark.xdist_group("cloud")

NODE = shutil.which("node") or "/usr/bin/node"


def _distribution_logical(assembly) -> tuple[str, str]:
    stack = assembly.stack_named("web")
    [logical] = [k for k, r in stack.resources.items() if r["Type"] == "AWS::CloudFront::Distribution"]
    return stack.name, logical


@pytest.fixture(scope="module")
def web_rehearsal(assembly):
    """A stage whose settings name the web app's origin (the played distribution's domain)."""
    domain = played_distribution_domain(*_distribution_logical(assembly))
    stage = Rehearsal(synthesize("web", {"web_origin": f"https://{domain}"}), name="web")
    try:
        yield stage
    finally:
        stage.close()


def _web(stage) -> tuple[str, dict]:
    stack = stage.assembly.stack_named("web")
    return stack.name, stack.resources


def _site(stage) -> str:
    stack, resources = _web(stage)
    [logical] = [k for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket" and k.startswith("Site")]
    return stage.dataplane.physical(stack, logical, None)


def _distribution(stage) -> tuple[str, dict]:
    stack, resources = _web(stage)
    [(logical, resource)] = [(k, r) for k, r in resources.items() if r["Type"] == "AWS::CloudFront::Distribution"]
    arn = f"arn:aws:cloudfront::{stage.account}:distribution/{stage.dataplane.physical(stack, logical, None)}"
    return arn, stage.resolve(stack, resource["Properties"]["DistributionConfig"])


def _cloudfront_read(stage, bucket: str, key: str, *, source_arn: str | None, action: str = "s3:GetObject",
                     secure: bool = True):
    """CloudFront's signed (OAC) request as IAM sees it: the service principal, the distribution as SourceArn."""
    context = [("aws:SecureTransport", "true" if secure else "false"), ("s3:TlsVersion", "1.3")]
    if source_arn is not None:
        context.append(("AWS:SourceArn", source_arn))
    resource = f"arn:aws:s3:::{bucket}" if action == "s3:ListBucket" else f"arn:aws:s3:::{bucket}/{key}"
    policy = stage.dataplane.bucket_policies[bucket]
    return evaluate(Need(action, resource, tuple(context), why="CloudFront OAC"),
                    for_service(policy, "cloudfront.amazonaws.com"))


def test_the_distribution_origin_is_the_site_bucket_signed_with_origin_access_control(web_rehearsal):
    site = _site(web_rehearsal)
    arn, config = _distribution(web_rehearsal)
    [origin] = config["Origins"]
    assert origin["DomainName"] == f"{site}.s3.{web_rehearsal.region}.amazonaws.com"
    assert origin["OriginAccessControlId"].startswith("E") and origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    access = web_rehearsal.client("s3").get_public_access_block(Bucket=site)["PublicAccessBlockConfiguration"]
    assert all(access.values())


def test_the_bucket_policy_lets_exactly_this_distribution_read_the_app(web_rehearsal):
    site = _site(web_rehearsal)
    arn, _ = _distribution(web_rehearsal)
    assert _cloudfront_read(web_rehearsal, site, "index.html", source_arn=arn).allowed
    assert _cloudfront_read(web_rehearsal, site, "", source_arn=arn, action="s3:ListBucket").allowed
    other = arn.rsplit("/", 1)[0] + "/E0THERDISTRIB0"
    assert not _cloudfront_read(web_rehearsal, site, "index.html", source_arn=other).allowed
    assert not _cloudfront_read(web_rehearsal, site, "index.html", source_arn=None).allowed
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:GetBucketPolicy"):
        assert not _cloudfront_read(web_rehearsal, site, "index.html", source_arn=arn, action=action).allowed
    denied = _cloudfront_read(web_rehearsal, site, "index.html", source_arn=arn, secure=False)
    assert not denied.allowed and denied.statement["Effect"] == "Deny"  # TLS only, even for CloudFront
    # Nobody else is named: every Allow of the policy is for the CloudFront service principal.
    policy = web_rehearsal.dataplane.bucket_policies[site]
    assert [s["Principal"] for s in policy["Statement"] if s["Effect"] == "Allow"] == [
        {"Service": "cloudfront.amazonaws.com"}]


def _deployed(stage) -> dict[str, dict]:
    stack, resources = _web(stage)
    [resource] = [r for r in resources.values() if r["Type"] == "Custom::CDKBucketDeployment"]
    response = stage.play_bucket_deployment(stack, stage.resolve(stack, resource["Properties"]))
    assert response["Status"] == "SUCCESS", response
    s3 = stage.client("s3")
    site = _site(stage)
    return {key: s3.get_object(Bucket=site, Key=key) for key in response["Data"]["SourceObjectKeys"]}


def test_the_deployment_writes_the_app_and_a_config_json_of_deploy_time_values(web_rehearsal):
    objects = _deployed(web_rehearsal)
    assert {"index.html", "config.json"} <= set(objects)
    assert all(o["CacheControl"] == "public, max-age=0, must-revalidate" for o in objects.values())
    assert objects["index.html"]["ContentType"] == "text/html"
    config = json.loads(objects["config.json"]["Body"].read())
    auth = web_rehearsal.assembly.stack_named("auth").name
    [(domain_logical, domain)] = [(k, r) for k, r in web_rehearsal.assembly.stack(auth).resources.items()
                                  if r["Type"] == "AWS::Cognito::UserPoolDomain"]
    prefix = domain["Properties"]["Domain"]
    origin = f"https://{played_distribution_domain(*_distribution_logical(web_rehearsal.assembly))}"
    assert config == {
        "backend": "aws",
        "apiUrl": "https://rehearsalapi.execute-api.localhost",
        "region": web_rehearsal.region,
        "userPoolClientId": web_rehearsal.ref("auth", "UsersSpa"),
        "cognitoDomain": f"https://{prefix}.auth.{web_rehearsal.region}.amazoncognito.com",
        "redirectUri": origin + "/",
        "logoutUri": origin + "/",
    }


def test_the_hosted_ui_returns_to_the_web_app_and_its_origin_may_call_the_api_and_upload(web_rehearsal):
    """The client in moto (created from the template) lists the deployed config's redirect URI as a callback and a
    logout URL, with the code flow only; the API's and the upload bucket's CORS allow the web origin."""
    config = json.loads(_deployed(web_rehearsal)["config.json"]["Body"].read())
    idp = web_rehearsal.client("cognito-idp")
    client = idp.describe_user_pool_client(UserPoolId=web_rehearsal.ref("auth", "Users"),
                                           ClientId=config["userPoolClientId"])["UserPoolClient"]
    assert config["redirectUri"] in client["CallbackURLs"]
    assert config["logoutUri"] in client["LogoutURLs"]
    assert client["AllowedOAuthFlows"] == ["code"] and "ClientSecret" not in client
    origin = config["redirectUri"].rstrip("/")
    api_stack = web_rehearsal.assembly.stack_named("api")
    [http_api] = [r for r in api_stack.resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert origin in web_rehearsal.resolve(api_stack.name, http_api["Properties"]["CorsConfiguration"])["AllowOrigins"]
    originals = web_rehearsal.ref("storage", "Originals")
    rules = web_rehearsal.client("s3").get_bucket_cors(Bucket=originals)["CORSRules"]
    assert any(origin in rule["AllowedOrigins"] and "POST" in rule["AllowedMethods"] for rule in rules)


@pytest.mark.skipif(not Path(NODE).exists(), reason="node is not installed")
def test_viewer_paths_reach_the_deployed_objects_through_the_routing_function(web_rehearsal):
    """A viewer path -> the CloudFront function (node) -> the key read from the deployed bucket: app routes get
    index.html, files are served as they are, a missing asset is NoSuchKey (404 with ListBucket granted)."""
    _deployed(web_rehearsal)
    paths = ["/", "/photos/0f3c9a7e2b", "/people", "/config.json", "/assets/app-1a2b.js", "/assets/missing.js"]
    runner = ("const fs = require('fs');"
              "const handler = new Function(fs.readFileSync(process.argv[1], 'utf8') + '\\nreturn handler;')();"
              "process.stdout.write(JSON.stringify(JSON.parse(process.argv[2]).map("
              "uri => handler({request: {method: 'GET', uri, querystring: {}, headers: {}}}).uri)));")
    result = subprocess.run([NODE, "-e", runner, str(SPA_ROUTING_FUNCTION), json.dumps(paths)],
                            capture_output=True, text=True, timeout=30, check=True)
    keys = [uri.lstrip("/") for uri in json.loads(result.stdout)]
    s3 = web_rehearsal.client("s3")
    site = _site(web_rehearsal)
    index = s3.get_object(Bucket=site, Key="index.html")["Body"].read()
    served = {}
    for path, key in zip(paths, keys, strict=True):
        try:
            served[path] = s3.get_object(Bucket=site, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            served[path] = None
    assert served["/"] == served["/photos/0f3c9a7e2b"] == served["/people"] == index
    assert json.loads(served["/config.json"])["backend"] == "aws"
    assert served["/assets/app-1a2b.js"] == b"export {};\n"
    assert served["/assets/missing.js"] is None


def test_the_played_distribution_id_is_the_one_the_bucket_policy_names(web_rehearsal):
    stack, logical = _distribution_logical(web_rehearsal.assembly)
    arn, _ = _distribution(web_rehearsal)
    assert arn.endswith("/" + played_distribution_id(stack, logical))
    site = _site(web_rehearsal)
    [allow] = [s for s in web_rehearsal.dataplane.bucket_policies[site]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Condition"] == {"StringEquals": {"AWS:SourceArn": arn}}
