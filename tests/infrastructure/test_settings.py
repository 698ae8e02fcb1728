"""Settings and packaging guards; no synth needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.settings import Settings, SettingsError
from stacks.shared import LambdaCodeMissingError, lambda_code

pytestmark = pytest.mark.infrastructure

ROOT = Path(__file__).resolve().parents[2]


def cdk_json_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


class FakeNode:
    def __init__(self, context: dict) -> None:
        self._context = context

    def try_get_context(self, key: str):
        return self._context.get(key)


def test_cdk_json_names_every_setting_and_matches_the_defaults():
    context = cdk_json_context()
    settings = Settings.from_context(FakeNode(context))
    assert settings == Settings()
    assert context["cli-telemetry"] is False
    assert json.loads((ROOT / "cdk.json").read_text())["app"] == ".venv/bin/python app.py"


def test_command_line_context_strings_are_coerced():
    settings = Settings.from_context(FakeNode({
        "max_upload_mb": "20", "self_sign_up_enabled": "true",
        "cors_allowed_origins": "https://photos.example.org,https://admin.example.org",
    }))
    assert settings.max_upload_bytes == 20 * 1024 * 1024
    assert settings.self_sign_up_enabled is True
    assert settings.cors_allowed_origins == ("https://photos.example.org", "https://admin.example.org")


@pytest.mark.parametrize("context, message", [
    ({"rejected_action": "keep"}, "rejected_action"),
    ({"mfa": "SMS"}, "mfa"),
    ({"cors_allowed_origins": ["*"]}, "cors_allowed_origins"),
    ({"log_retention_days": 10}, "log_retention_days"),
    ({"ingest_batch_size": 100, "ingest_max_batching_window_seconds": 0}, "batching_window"),
    ({"account": "123"}, "account"),
    ({"max_upload_mb": "lots"}, "max_upload_mb"),
    ({"validator_reserved_concurrency": -1}, "validator_reserved_concurrency"),
    ({"ingest_max_concurrency": 1}, "ingest_max_concurrency"),
    ({"ingest_max_concurrency": 1001}, "ingest_max_concurrency"),
    ({"validator_reserved_concurrency": 3, "ingest_max_concurrency": 5}, "must not exceed"),
])
def test_invalid_settings_are_refused_with_the_key_named(context, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_context(FakeNode(context))


def test_synth_without_the_lambda_build_says_how_to_build_it(tmp_path: Path):
    settings = Settings(lambda_code_dir=str(tmp_path / "missing"))
    with pytest.raises(LambdaCodeMissingError, match="scripts/build_lambda.py"):
        lambda_code(settings)


def test_validator_reserved_concurrency_is_off_by_default_and_null_or_zero_mean_none():
    """A new account's concurrency limit can be 10 in all, and Lambda keeps 10 unreserved: reserving 10 (the old
    default) failed the first deploy there."""
    assert cdk_json_context()["validator_reserved_concurrency"] is None
    assert Settings.from_context(FakeNode(cdk_json_context())).validator_reserved_concurrency == 0
    assert Settings.from_context(FakeNode({"validator_reserved_concurrency": "null"})).validator_reserved_concurrency == 0
    assert Settings.from_context(FakeNode({"validator_reserved_concurrency": "0"})).validator_reserved_concurrency == 0
    chosen = Settings.from_context(FakeNode({"validator_reserved_concurrency": "20", "ingest_max_concurrency": "20"}))
    assert (chosen.validator_reserved_concurrency, chosen.ingest_max_concurrency) == (20, 20)
    assert Settings().ingest_max_concurrency == 5


def test_search_operator_roles_must_be_role_arns():
    Settings(search_operator_role_arns=("arn:aws:iam::111111111111:role/photo-ops",)).check()
    with pytest.raises(SettingsError, match="search_operator_role_arns"):
        Settings(search_operator_role_arns=("photo-ops",)).check()
