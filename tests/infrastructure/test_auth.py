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
