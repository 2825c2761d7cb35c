"""The account stage: one book across symbols, kept from execution reports only (``ledger``), the return window
of its symbols (``returns``), and the stage itself (``stage``: event-time clock, portfolio risk gate, execution,
reconciliation, operator commands). See ``docs/flow.md``."""

from .ledger import Ledger, StrategyBook
from .returns import ReturnWindow
from .stage import AccountConfig, AccountStage

__all__ = ["AccountConfig", "AccountStage", "Ledger", "StrategyBook", "ReturnWindow"]
