from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

pytestmark = pytest.mark.infrastructure


def test_user_pool_password_policy_sign_in_and_recovery(synthesized):
    synthesized.template("auth").has_resource_properties("AWS::Cognito::UserPool", {
        "Policies": {"PasswordPolicy": Match.object_like({
            "MinimumLength": 12, "RequireLowercase": True, "RequireUppercase": True,
            "RequireNumbers": True, "RequireSymbols": True,
        })},
        "UsernameAttributes": ["email"],
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},  # self sign-up off
        "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]},
    })


def test_user_pool_mfa_is_totp_per_setting_and_threat_protection_enforced(synthesized):
    synthesized.template("auth").has_resource_properties("AWS::Cognito::UserPool", {
        "MfaConfiguration": synthesized.stacks.settings.mfa,
        "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
        "UserPoolTier": "PLUS",
        "UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"},
    })


def test_spa_client_is_public_with_code_flow_and_short_tokens(synthesized):
    template = synthesized.template("auth")
    template.has_resource_properties("AWS::Cognito::UserPoolClient", {
        "GenerateSecret": False,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthFlowsUserPoolClient": True,
        "PreventUserExistenceErrors": "ENABLED",
        "AccessTokenValidity": 60, "IdTokenValidity": 60, "RefreshTokenValidity": 43200,
        "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "minutes"},
    })
    client = next(iter(template.find_resources("AWS::Cognito::UserPoolClient").values()))["Properties"]
    assert "implicit" not in client["AllowedOAuthFlows"]
    assert "ALLOW_USER_PASSWORD_AUTH" not in client.get("ExplicitAuthFlows", [])


def test_auth_outputs(synthesized):
    outputs = synthesized.template_json("auth")["Outputs"]
    assert {"UserPoolId", "UserPoolClientId", "IssuerUrl"} <= set(outputs)


def test_hosted_sign_in_domain_exists_with_the_prefix_from_settings(synthesized):
    """The SPA client (code flow + PKCE) had no hosted sign-in page: no user pool domain at all."""
    settings = synthesized.stacks.settings
    template = synthesized.template("auth")
    [domain] = template.find_resources("AWS::Cognito::UserPoolDomain").values()
    assert domain["Properties"]["Domain"] == settings.hosted_domain_prefix == "photo-organizer-dev-111111111111"
    assert domain["Properties"]["UserPoolId"]["Ref"].startswith("Users")
    assert "CustomDomainConfig" not in domain["Properties"]
    outputs = template.to_json()["Outputs"]
    assert ".auth.eu-west-1.amazoncognito.com" in str(outputs["HostedUiBaseUrl"]["Value"])
    assert "response_type=code" in str(outputs["SignInUrl"]["Value"])


def test_spa_client_callback_and_logout_urls_come_from_settings(synthesized):
    settings = synthesized.stacks.settings
    synthesized.template("auth").has_resource_properties("AWS::Cognito::UserPoolClient", {
        "CallbackURLs": list(settings.oauth_callback_urls),
        "LogoutURLs": list(settings.oauth_logout_urls),
        "AllowedOAuthFlows": ["code"],
        "GenerateSecret": False,
    })


@pytest.mark.parametrize("changes, message", [
    ({"cognito_domain_prefix": "My_Photos"}, "cognito_domain_prefix"),
    ({"cognito_domain_prefix": "photos-aws-login"}, "cognito_domain_prefix"),
    ({"oauth_callback_urls": ("http://photos.example.org/",)}, "oauth_callback_urls"),
    ({"oauth_logout_urls": ()}, "oauth_logout_urls"),
])
def test_hosted_ui_settings_are_checked(changes, message):
    from stacks.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match=message):
        Settings(**changes).check()
    assert Settings(cognito_domain_prefix="family-photos").hosted_domain_prefix == "family-photos"
