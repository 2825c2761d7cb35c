"""Execution: slicing of approved parents into children (TWAP/VWAP), paper brokers that fill them.

See ``docs/execution.md``.
"""

from .broker import BrokerConfig, Position, SimBroker, sqrt_impact_bps
from .paper import PaperBroker, PaperConfig
from .slicing import ChildQueue, VolumeProfile, slice_weights, split_quantity, twap_children, vwap_children

__all__ = ["PaperBroker", "PaperConfig", "SimBroker", "BrokerConfig", "Position", "sqrt_impact_bps",
           "VolumeProfile", "slice_weights", "split_quantity", "twap_children", "vwap_children", "ChildQueue"]
