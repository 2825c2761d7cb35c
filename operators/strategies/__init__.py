"""Strategies: turn closed bars, feature values and signals into order intents (one small interface)."""

from .base import Intent, Strategy
from .trend import EmaSpreadTrend

__all__ = ["Intent", "Strategy", "EmaSpreadTrend"]
