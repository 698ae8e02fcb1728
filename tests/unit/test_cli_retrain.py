"""`photo-organizer retrain`: refuses politely without the training scripts, and runs the steps with a result
table when they are there (stand-in scripts; the real ones run in tests/integration/test_retrain_end_to_end.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import photo_organizer.bootstrap as bootstrap
import photo_organizer.cli as cli
from photo_organizer.cli import app


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(cli, "console", Console(width=250))


def test_retrain_without_the_scripts_says_so_and_changes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bootstrap, "repository_root", lambda: tmp_path / "installed-without-repository")
    result = CliRunner().invoke(app, ["retrain", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "training scripts" in result.output and "Nothing was changed" in result.output
    assert not (tmp_path / "data" / "models").exists()


def test_retrain_with_no_feedback_reports_both_models_skipped(tmp_path, monkeypatch) -> None:
    root = tmp_path / "checkout"
    (root / "sagemaker").mkdir(parents=True)
    for name in ("preprocess.py", "train_tagging.py", "train_faces.py", "evaluate.py"):
        (root / "sagemaker" / name).write_text("raise SystemExit('must not run without feedback')\n")
    (root / "lambdas").symlink_to(Path(__file__).resolve().parents[2] / "lambdas")
    monkeypatch.setattr(bootstrap, "repository_root", lambda: root)
    result = CliRunner().invoke(app, ["retrain", "--data-dir", str(tmp_path / "data")], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "tagging" in result.output and "skipped" in result.output
    assert "no tag feedback yet" in result.output


@pytest.mark.parametrize("command", ["analyze", "retrain"])
def test_batch_commands_refuse_while_another_process_holds_the_index_writer(tmp_path, command) -> None:
    data = tmp_path / "data"
    with bootstrap.library_writer_lock(data)():  # what a running `photo-organizer serve` holds
        result = CliRunner().invoke(app, [command, "--data-dir", str(data)], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert f"Not {'analysing' if command == 'analyze' else 'retraining'}" in result.output
    assert "Stop the server" in result.output or "stop the server" in result.output
    assert not (data / "models").exists() and not (data / "photo-organizer.sqlite3").exists()  # nothing touched
