"""The functions' metrics: published in Lambda, nothing kept (and so nothing printed) when disabled."""

from __future__ import annotations

import json

from photo_organizer.handlers.metrics import count, metrics


def test_a_disabled_run_keeps_no_metric_so_powertools_never_prints_a_blob(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.clear_metrics()
    for _ in range(250):  # Powertools prints on its own at 100 values of one metric
        count("Ingest_ready")
    assert metrics.metric_set == {}
    assert "_aws" not in capsys.readouterr().out


def test_an_enabled_run_publishes_the_counts(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()
    count("FeedbackRecorded", 3)
    count("FeedbackRecorded", 2)
    metrics.flush_metrics()
    blob = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert blob["FeedbackRecorded"] == [3.0, 2.0]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PhotoOrganizer"
