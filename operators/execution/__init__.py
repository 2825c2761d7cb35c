"""Execution: slicing of approved parents into children (TWAP/VWAP), the order state machine, the venue protocol and
the simulated venue that fills orders in event time.

See ``docs/execution.md``.
"""

from .broker import BrokerConfig, Position, SimBroker, sqrt_impact_bps
from .orders import OrderManager, OrderState
from .slicing import ChildQueue, VolumeProfile, slice_weights, split_quantity, twap_children, vwap_children
from .venue import SimVenue, Venue, fill_of_report

__all__ = [
    "Venue",
    "SimVenue",
    "fill_of_report",
    "OrderManager",
    "OrderState",
    "SimBroker",
    "BrokerConfig",
    "Position",
    "sqrt_impact_bps",
    "VolumeProfile",
    "slice_weights",
    "split_quantity",
    "twap_children",
    "vwap_children",
    "ChildQueue",
]
