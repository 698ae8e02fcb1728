"""What the cloud's export of the feature snapshot needs beyond the stores services.training_export reads: whose
features to export."""

from __future__ import annotations

from typing import Protocol


class TrainingOwners(Protocol):
    def owners(self) -> list[str]:
        """The owners the retraining may train for: those who gave feedback (undone events included), sorted."""
        ...
