"""The shape every metric reports in: a raw value with its unit, and a score in [0, 1] where 1 is
good (``None`` for descriptive values that no composite weighs)."""

from __future__ import annotations

import math

import numpy as np


def measure(value, score, unit: str, **facts) -> dict:
    entry = {"value": _plain(value), "score": None if score is None else float(np.clip(score, 0.0, 1.0)),
             "unit": unit}
    entry.update({key: _plain(fact) for key, fact in facts.items()})
    return entry


def group_mean(metrics: dict) -> float | None:
    """Mean of the scores a group's metrics have (descriptive ones have none)."""
    scores = [entry["score"] for entry in metrics.values() if entry["score"] is not None]
    return float(np.mean(scores)) if scores else None


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    return value


def finite_or_text(value):
    """JSON has no infinity or NaN: they are written as the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: finite_or_text(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_text(item) for item in value]
    return value
