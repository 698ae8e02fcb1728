"""WebStack: the single-page app in a private bucket behind CloudFront, and the config.json it reads at start.

Ordering: this stack deploys after storage, auth and the API, and reads from them (the API's endpoint, the Cognito
client and hosted domain, the photo buckets' names); none of them reads from it. The web app uses the existing SPA
client of the AuthStack, the one the API's JWT authorizer accepts: a client of its own would need the authorizer
(an earlier stack) to name it, a cycle. So the earlier stacks learn the web app's origin from settings
(Settings.web_public_origin: a custom domain, or the CloudFront origin of the first deploy) and add it to the
client's callback/logout URLs, the API's CORS and the upload bucket's CORS; see stacks/settings.py.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations, CfnOutput, Duration, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from stacks.settings import Settings
from stacks.shared import (
    LAMBDA_CONCURRENCY_REASON,
    PROJECT_ROOT,
    AuthOutputs,
    StorageOutputs,
    app_log_group,
    checkov_skip,
    removal_policy,
    suppress,
)

SPA_ROUTING_FUNCTION = Path(__file__).resolve().parent / "cloudfront" / "spa_routing.js"
CONFIG_FILE = "config.json"
HSTS_MAX_AGE = Duration.days(730)
_PRICE_CLASSES = {"PriceClass_100": cloudfront.PriceClass.PRICE_CLASS_100,
                  "PriceClass_200": cloudfront.PriceClass.PRICE_CLASS_200,
                  "PriceClass_All": cloudfront.PriceClass.PRICE_CLASS_ALL}


class WebBuildMissingError(RuntimeError):
    pass


def web_code(settings: Settings) -> Path:
    """The built app (Vite writes it into web_code_dir); built before synth, like the Lambda bundle, never during."""
    directory = Path(settings.web_code_dir)
    if not directory.is_absolute():
        directory = PROJECT_ROOT / directory
    if not (directory / "index.html").is_file():
        raise WebBuildMissingError(
            f"Web app build {directory} has no index.html: build the app first (`make synth` does), or pass "
            "-c web_code_dir=<dir>."
        )
    return directory


def content_security_policy(*, api_origin: str, cognito_origin: str, upload_origin: str,
                            image_origins: list[str]) -> str:
    """The app loads only its own files; images also from the photo buckets (presigned GETs), data: and blob:
    (local previews of files being uploaded); it talks to the API, Cognito's token endpoint and the upload bucket
    (presigned POST); the hosted sign-in page is the only other place a form may go."""
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src " + " ".join(["'self'", "data:", "blob:", *image_origins]),
        "connect-src " + " ".join(["'self'", api_origin, cognito_origin, upload_origin]),
        "font-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action " + " ".join(["'self'", cognito_origin]),
    ]
    return "; ".join(directives)


class WebStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: Settings, storage: StorageOutputs,
                 auth: AuthOutputs, api_url: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        build = web_code(settings)
        logs = self._log_bucket(settings) if settings.web_logging else None

        # SSE-S3, not the data key: CloudFront's OAC reads SSE-KMS objects only if the key policy lets
        # cloudfront.amazonaws.com decrypt for this distribution's ARN, and the key lives in the storage stack,
        # which cannot name a later stack's distribution (a key of this stack would: key -> distribution ->
        # bucket -> key, a cycle). The bucket holds only the public build of the app: nothing in it is secret.
        site = s3.Bucket(
            self, "Site",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=logs,
            server_access_logs_prefix="site/" if logs else None,
            removal_policy=removal_policy(settings),
        )
        if logs is None:
            suppress(site, ("AwsSolutions-S1", "web_logging=false in cdk.json: the site bucket's access logs are "
                                               "off in this deployment (it holds only the public app build)."))
            checkov_skip(site, ("CKV_AWS_18", "web_logging=false in cdk.json: the site bucket's access logs are off "
                                              "in this deployment (it holds only the public app build)."))
        checkov_skip(site, ("CKV_AWS_21", "Holds only the app build, replaced whole by each deploy from the "
                                          "repository; an older build is redeployed from its commit, not a version."))

        routing = cloudfront.Function(
            self, "SpaRouting",
            code=cloudfront.FunctionCode.from_file(file_path=str(SPA_ROUTING_FUNCTION)),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="Extensionless paths are app routes: serve /index.html",
        )
        headers = self._security_headers(storage, auth, api_url)

        certificate = (acm.Certificate.from_certificate_arn(self, "Certificate", settings.web_certificate_arn)
                       if settings.web_domain_name else None)
        # Read (GetObject) and list (ListBucket): with ListBucket, S3 answers a missing asset 404 instead of 403.
        # CloudFront forwards no query string (CachingOptimized), so no ListObjects request can pass through it.
        origin = origins.S3BucketOrigin.with_origin_access_control(
            site, origin_access_levels=[cloudfront.AccessLevel.READ, cloudfront.AccessLevel.LIST])
        distribution = cloudfront.Distribution(
            self, "Distribution",
            comment=f"{settings.prefix} web app",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                compress=True,
                function_associations=[cloudfront.FunctionAssociation(
                    function=routing, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST)],
            ),
            default_root_object="index.html",
            domain_names=[settings.web_domain_name] if settings.web_domain_name else None,
            certificate=certificate,
            # Applies to a custom certificate only: the default *.cloudfront.net one has a fixed policy.
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=_PRICE_CLASSES[settings.web_price_class],
            enable_logging=logs is not None,
            log_bucket=logs,
            log_file_prefix="cloudfront/" if logs else None,
            web_acl_id=settings.web_acl_arn or None,
        )
        self._suppress_distribution(distribution, settings)
        Annotations.of(distribution.node.find_child("Origin1")).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:listBucketSecurityRisk",
            "defaultRootObject is index.html, and the viewer-request function sends every extensionless path, / "
            "included, to /index.html: no request reaches the bucket's root as a listing.")

        web_url = (settings.web_public_origin or f"https://{distribution.distribution_domain_name}") + "/"
        if not settings.web_public_origin:
            Annotations.of(self).add_warning_v2(
                "photo-organizer:web-origin",
                "web_origin is not set: the Cognito client, the API and the upload bucket do not know the web "
                "app's CloudFront origin yet. After this deploy, set web_origin to the WebUrl output (without the "
                "trailing slash) and deploy again; or use web_domain_name with web_certificate_arn.")

        # Assets carry content hashes in their names; index.html and config.json do not: every object revalidates
        # (max-age=0 with an ETag), which CloudFront's CachingOptimized clamps to its one-second minimum.
        # The deployment handler's own role and encrypted log group, like every function of the app: CDK's default
        # role would carry the AWSLambdaBasicExecutionRole managed policy (logs:* on every group).
        deploy_logs = app_log_group(self, "DeployLogs", settings=settings, key=storage.key, name="web-deploy")
        deploy_role = iam.Role(self, "DeployRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                               description=f"{settings.prefix} web app deployment (CDK BucketDeployment handler)")
        deploy_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[deploy_logs.log_group_arn]))
        s3deploy.BucketDeployment(
            self, "Deploy",
            role=deploy_role,
            log_group=deploy_logs,
            destination_bucket=site,
            sources=[
                s3deploy.Source.asset(str(build), exclude=[CONFIG_FILE]),
                s3deploy.Source.json_data(CONFIG_FILE, self.app_config(settings, auth, api_url, web_url)),
            ],
            cache_control=[s3deploy.CacheControl.from_string("public, max-age=0, must-revalidate")],
            prune=True,
            memory_limit=256,
        )
        self._suppress_deployment(deploy_role)

        self.site_bucket = site
        self.distribution = distribution
        self.web_url = web_url
        CfnOutput(self, "WebUrl", value=web_url, description="The web app (set web_origin to it, without the /)")
        CfnOutput(self, "DistributionId", value=distribution.distribution_id)
        CfnOutput(self, "SiteBucketName", value=site.bucket_name, description="The app's files (private)")

    @staticmethod
    def app_config(settings: Settings, auth: AuthOutputs, api_url: str, web_url: str) -> dict:
        """config.json: what the app needs to find the API and sign in. Public values only, no secrets."""
        return {
            "backend": "aws",
            "apiUrl": api_url,
            "region": settings.region,
            "userPoolClientId": auth.client_id,
            "cognitoDomain": auth.hosted_ui_base_url,
            "redirectUri": web_url,
            "logoutUri": web_url,
        }

    def _security_headers(self, storage: StorageOutputs, auth: AuthOutputs,
                          api_url: str) -> cloudfront.ResponseHeadersPolicy:
        upload_origin = f"https://{storage.originals.bucket_regional_domain_name}"
        csp = content_security_policy(
            api_origin=api_url, cognito_origin=auth.hosted_ui_base_url, upload_origin=upload_origin,
            image_origins=[f"https://{storage.derivatives.bucket_regional_domain_name}", upload_origin])
        return cloudfront.ResponseHeadersPolicy(
            self, "SecurityHeaders",
            comment="Strict CSP, HSTS, no framing, no sniffing, no referrer",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=csp, override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(custom_headers=[
                cloudfront.ResponseCustomHeader(header="Permissions-Policy", override=True,
                                                value="camera=(), microphone=(), geolocation=(), payment=()"),
                cloudfront.ResponseCustomHeader(header="Cross-Origin-Opener-Policy", value="same-origin",
                                                override=True),
            ]),
        )

    def _log_bucket(self, settings: Settings) -> s3.Bucket:
        """CloudFront's standard logs and the site bucket's access logs. CloudFront delivers with an ACL, so this
        bucket keeps ACLs (BucketOwnerPreferred); SSE-S3, since CloudFront's log delivery cannot use SSE-KMS
        without a key policy naming it."""
        bucket = s3.Bucket(
            self, "Logs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-web-logs",
                                              expiration=Duration.days(settings.access_log_expiration_days))],
            removal_policy=removal_policy(settings),
        )
        suppress(bucket, ("AwsSolutions-S1", "This is the log target of the web distribution and the site bucket; "
                                             "logging its own access would log the logging."))
        checkov_skip(bucket,
                     ("CKV_AWS_18", "This is the log target of the web distribution and the site bucket; logging "
                                    "its own access would log the logging."),
                     ("CKV_AWS_21", "Logs are written once by the log delivery and expire by lifecycle; versions "
                                    "would only keep expired logs longer."))
        return bucket

    def _suppress_distribution(self, distribution: cloudfront.Distribution, settings: Settings) -> None:
        items: list[tuple[str, str]] = [
            ("AwsSolutions-CFR1", "A family photo library is used wherever its members travel: no geo restriction; "
                                  "every data request is authenticated by the API."),
        ]
        if not settings.web_acl_arn:
            items.append(("AwsSolutions-CFR2", "web_acl_arn is empty in cdk.json: the distribution serves only the "
                                               "static app build (no data, no forms); the API has its own "
                                               "throttling. Set web_acl_arn to attach a WAF web ACL."))
        if not settings.web_domain_name:
            items.append(("AwsSolutions-CFR4", "Without web_domain_name the distribution uses CloudFront's default "
                                               "*.cloudfront.net certificate, whose TLS floor CloudFront fixes; with "
                                               "a custom domain the minimum is TLSv1.2_2021."))
        if not settings.web_logging:
            items.append(("AwsSolutions-CFR3", "web_logging=false in cdk.json: CloudFront access logs are off in "
                                               "this deployment."))
        suppress(distribution, *items)
        # The same decisions in checkov's terms (its WAF, TLS and logging checks on the distribution).
        checkov_ids = {"AwsSolutions-CFR2": "CKV_AWS_68", "AwsSolutions-CFR4": "CKV_AWS_174",
                       "AwsSolutions-CFR3": "CKV_AWS_86"}
        skips = [(checkov_ids[rule], reason) for rule, reason in items if rule in checkov_ids]
        if skips:
            checkov_skip(distribution, *skips)

    def _suppress_deployment(self, role: iam.IRole) -> None:
        """BucketDeployment's grants on our role, and its singleton function (CDK's own, at the stack's root)."""
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason=("CDK's BucketDeployment grants: read of the CDK asset objects (named by content hash) and "
                    "write/delete of the site bucket's objects (the whole build is replaced on each deploy)."),
            applies_to=["Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*",
                        "Action::s3:DeleteObject*", "Action::s3:Abort*",
                        RegexAppliesTo(regex=r"/^Resource::arn:aws:s3:::cdk-[a-z0-9]+-assets-\d{12}-[a-z0-9-]+\/\*$/"),
                        RegexAppliesTo(regex=r"/^Resource::<Site[0-9A-F]{8}\.Arn>\/\*$/")],
        )], apply_to_children=True)
        for child in self.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                NagSuppressions.add_resource_suppressions(child, [NagPackSuppression(
                    id="AwsSolutions-L1",
                    reason=("CDK's BucketDeployment handler: its runtime is chosen by aws-cdk-lib and moves with it; "
                            "it runs at deploy time only."))], apply_to_children=True)
                checkov_skip(
                    child,
                    ("CKV_AWS_116", "CDK's BucketDeployment handler, invoked by CloudFormation for this stack's "
                                    "custom resource: a failure fails and rolls back the deploy; a DLQ would keep a "
                                    "request nobody can answer any more."),
                    ("CKV_AWS_117", "CDK's BucketDeployment handler copies between S3 buckets at deploy time only: "
                                    "it reaches no private network."),
                    ("CKV_AWS_173", "CDK's BucketDeployment handler: its environment holds only the CA bundle's "
                                    "path (set by CDK), no secret; encrypted at rest with Lambda's AWS-managed key."),
                    ("CKV_AWS_115", LAMBDA_CONCURRENCY_REASON))
