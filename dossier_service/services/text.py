"""Small French formatting helpers for notebook texts (pure)."""

from __future__ import annotations

from datetime import date, datetime

from deployment.conventions import PARIS


def fr_date(value: date | datetime) -> str:
    """``31/01/2026`` (datetimes shown in Europe/Paris)."""
    if isinstance(value, datetime):
        value = value.astimezone(PARIS).date()
    return value.strftime("%d/%m/%Y")


def fr_datetime(value: datetime) -> str:
    return value.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
