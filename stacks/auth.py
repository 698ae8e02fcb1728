"""AuthStack: the Cognito user pool and the single-page app's public client."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from stacks.settings import Settings
from stacks.shared import AuthOutputs, removal_policy, suppress

_MFA = {"OPTIONAL": cognito.Mfa.OPTIONAL, "REQUIRED": cognito.Mfa.REQUIRED, "OFF": cognito.Mfa.OFF}


class AuthStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: Settings, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        plus = settings.cognito_feature_plan == "PLUS"

        pool = cognito.UserPool(
            self, "Users",
            self_sign_up_enabled=settings.self_sign_up_enabled,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_lowercase=True, require_uppercase=True, require_digits=True,
                require_symbols=True, temp_password_validity=Duration.days(3)),
            mfa=_MFA[settings.mfa],
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False) if settings.mfa != "OFF" else None,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS if plus else cognito.FeaturePlan.ESSENTIALS,
            # Threat protection (compromised credentials, adaptive authentication) needs the Plus plan.
            standard_threat_protection_mode=(cognito.StandardThreatProtectionMode.FULL_FUNCTION if plus
                                             else cognito.StandardThreatProtectionMode.NO_ENFORCEMENT),
            deletion_protection=settings.retain,
            removal_policy=removal_policy(settings),
        )
        if not plus:
            suppress(pool, ("AwsSolutions-COG8", "cognito_feature_plan=ESSENTIALS was chosen in cdk.json for cost; "
                                                 "threat protection (Plus plan) is off in this deployment."))
        if settings.mfa != "REQUIRED":
            suppress(pool, ("AwsSolutions-COG2", f"MFA is {settings.mfa} by the cdk.json 'mfa' setting: users "
                                                 "enrol TOTP themselves; set mfa=REQUIRED to enforce it."))

        client = pool.add_client(
            "Spa",
            generate_secret=False,  # a browser cannot keep a secret: public client, PKCE
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                # plus the web app's origin when known at synth (settings.web_public_origin, stacks/web.py)
                callback_urls=list(settings.spa_callback_urls),
                logout_urls=list(settings.spa_logout_urls),
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
        )

        # The hosted sign-in page the SPA sends users to (authorization code + PKCE), on a Cognito prefix domain.
        domain = pool.add_domain(
            "HostedUi",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=settings.hosted_domain_prefix),
            managed_login_version=cognito.ManagedLoginVersion.CLASSIC_HOSTED_UI,  # needs no branding resource
        )
        sign_in_url = domain.sign_in_url(client, redirect_uri=settings.oauth_callback_urls[0])

        issuer_url = f"https://cognito-idp.{self.region}.amazonaws.com/{pool.user_pool_id}"
        self.outputs = AuthOutputs(user_pool_id=pool.user_pool_id, user_pool_arn=pool.user_pool_arn,
                                   client_id=client.user_pool_client_id, issuer_url=issuer_url,
                                   hosted_ui_base_url=domain.base_url())
        self.user_pool = pool
        self.client = client

        CfnOutput(self, "UserPoolId", value=pool.user_pool_id, description="Cognito user pool id")
        CfnOutput(self, "UserPoolClientId", value=client.user_pool_client_id, description="SPA app client id")
        CfnOutput(self, "IssuerUrl", value=issuer_url, description="OIDC issuer of the user pool's tokens")
        CfnOutput(self, "HostedUiBaseUrl", value=domain.base_url(),
                  description="Hosted sign-in domain (authorize, token and logout endpoints live under it)")
        CfnOutput(self, "SignInUrl", value=sign_in_url, description="Hosted sign-in page for the SPA client")
