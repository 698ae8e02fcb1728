"""Estimated cost of a run, and the run summary written to S3 and CloudWatch."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from photo_organizer.analysis.models import ApiCall
from photo_organizer.errors import ConfigurationError


@dataclass(frozen=True)
class PriceTable:
    per_image_usd: Mapping[ApiCall, float]
    face_storage_usd_per_face_month: float
    noted_on: date
    source: str


# Tier 1 (first 1M images a month) image prices in USD, us-east-1. The figures were copied from the project brief,
# which quotes https://aws.amazon.com/rekognition/pricing/ ; they were NOT re-read from that page on noted_on (no
# live web here) and tiers, regions and prices change: check them before quoting a number to anyone.
REKOGNITION_TIER1_PRICES = PriceTable(
    per_image_usd={
        ApiCall.DETECT_LABELS: 0.001,
        ApiCall.INDEX_FACES: 0.001,
        ApiCall.DETECT_TEXT: 0.001,
        ApiCall.DETECT_MODERATION_LABELS: 0.001,
    },
    face_storage_usd_per_face_month=0.00001,
    noted_on=date(2026, 11, 25),
    source="project brief quoting https://aws.amazon.com/rekognition/pricing/ (tier 1); unverified",
)


def estimate_cost(
    calls_per_api: Mapping[ApiCall, int], price_table: PriceTable = REKOGNITION_TIER1_PRICES, *, face_months: float = 0
) -> float:
    """Dollars for the calls (at tier-1 prices: an upper bound past 1M images a month) plus face-months stored."""
    total = 0.0
    for api, count in calls_per_api.items():
        if count and api not in price_table.per_image_usd:
            raise ConfigurationError(f"no price for {api}")
        total += count * price_table.per_image_usd.get(api, 0.0)
    return round(total + face_months * price_table.face_storage_usd_per_face_month, 6)


@dataclass
class RunSummary:
    run_id: str
    photos: int = 0  # photos that needed analysis this run
    copied: int = 0  # of which (near) duplicates whose results were copied
    calls: dict[ApiCall, int] = field(default_factory=dict)
    throttles: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # reason code -> photos left for the next run
    estimated_cost_usd: float = 0.0

    def record_call(self, api: ApiCall, count: int = 1) -> None:
        self.calls[api] = self.calls.get(api, 0) + count

    def record_failure(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def merge(self, other: RunSummary) -> RunSummary:
        """Partitions summarise their own photos; the driver adds them up."""
        merged = RunSummary(self.run_id, self.photos + other.photos, self.copied + other.copied)
        for api, count in [*self.calls.items(), *other.calls.items()]:
            merged.record_call(api, count)
        for reason, count in [*self.failures.items(), *other.failures.items()]:
            merged.failures[reason] = merged.failures.get(reason, 0) + count
        merged.throttles = self.throttles + other.throttles
        merged.estimated_cost_usd = round(self.estimated_cost_usd + other.estimated_cost_usd, 6)
        return merged

    def to_json(self) -> str:
        return json.dumps(
            {
                "run_id": self.run_id,
                "photos": self.photos,
                "copied": self.copied,
                "calls": {api.value: self.calls[api] for api in sorted(self.calls)},
                "throttles": self.throttles,
                "failures": dict(sorted(self.failures.items())),
                "failed_photos": sum(self.failures.values()),
                "estimated_cost_usd": self.estimated_cost_usd,
            },
            sort_keys=True,
        )

    def metric_data(self, *, timestamp: datetime | None = None) -> list[dict[str, Any]]:
        """The MetricData list of CloudWatch PutMetricData (the caller adds Namespace and batches by 1000)."""

        def datum(name: str, value: float, unit: str, **dimensions: str) -> dict[str, Any]:
            item: dict[str, Any] = {"MetricName": name, "Value": float(value), "Unit": unit}
            if dimensions:
                item["Dimensions"] = [{"Name": k, "Value": v} for k, v in dimensions.items()]
            if timestamp is not None:
                item["Timestamp"] = timestamp
            return item

        data = [
            datum("PhotosAnalysed", self.photos, "Count"),
            datum("PhotosCopied", self.copied, "Count"),
            datum("Throttles", self.throttles, "Count"),
            datum("FailedPhotos", sum(self.failures.values()), "Count"),
            datum("EstimatedCostUSD", self.estimated_cost_usd, "None"),
        ]
        data += [datum("ApiCalls", self.calls[api], "Count", Api=api.value) for api in sorted(self.calls)]
        data += [datum("FailedPhotos", n, "Count", Reason=r) for r, n in sorted(self.failures.items())]
        return data
