"""Execution: order placement from approved decisions and the paper broker that fills them."""

from .paper import PaperBroker, PaperConfig

__all__ = ["PaperBroker", "PaperConfig"]
