"""Vectorised backtests for parameter sweeps: many parameter sets of a simple strategy at once, in numpy.

Three jobs, one module each:

* :mod:`operators.sweep.rules`: the strategy rules, vectorised (trend, mean reversion) or run bar by bar
  (:func:`strategy_targets`, any strategy of ``operators.strategies``): the wanted position of every parameter
  set at every bar close;
* :mod:`operators.sweep.simulation`: from wanted positions to fills, fees and equity marks, with the sizing and
  costs of the event-driven pipeline (the model is described there), so that a sweep and a ``levibot backtest``
  of the same parameters agree;
* :mod:`operators.sweep.grid`: parameter grids, a rule run over every parameter set and symbol, and the results
  ranked by their statistics (computed by :mod:`operators.performance`).

Every name is importable from ``operators.sweep`` itself.

>>> import numpy as np
>>> g = param_grid(entry=[0.01, 0.02], exit=[0.002]); g["entry"].tolist()
[0.01, 0.02]
"""

from __future__ import annotations

from operators.sweep.grid import SweepResult, equity_stats, param_grid, sweep_trend, sweep_zscore
from operators.sweep.rules import (
    ema_spread,
    hysteresis_positions,
    rolling_zscore_array,
    strategy_targets,
    trend_positions,
    zscore_positions,
)
from operators.sweep.simulation import (
    NS,
    BarArrays,
    SimConfig,
    SimResult,
    combine_equity,
    next_open_fill_prices,
    simulate,
)

__all__ = [
    "NS",
    "SimConfig",
    "BarArrays",
    "SimResult",
    "SweepResult",
    "param_grid",
    "hysteresis_positions",
    "trend_positions",
    "ema_spread",
    "rolling_zscore_array",
    "zscore_positions",
    "next_open_fill_prices",
    "simulate",
    "equity_stats",
    "combine_equity",
    "sweep_trend",
    "sweep_zscore",
    "strategy_targets",
]
