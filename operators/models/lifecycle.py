"""Champion/challenger promotion and the retraining schedule (pure decisions; the registry does the I/O).

Promotion rule (:func:`promotion_decision`): both models are scored on the same **later holdout** (rows after the
challenger's training window plus the gap, never seen by either). The challenger replaces the champion only if

* its holdout log-loss is lower than the champion's by at least ``min_gain`` (nats), and
* its holdout AUC is not lower than the champion's by more than ``max_auc_drop``, and
* its holdout ECE is at most ``max_ece``.

Without a champion the reference is the base-rate baseline (the training-window up frequency as a constant).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.time import NS_PER_S as NS

__all__ = ["PromotionRule", "promotion_decision", "retrain_due"]


@dataclass(frozen=True)
class PromotionRule:
    """``min_gain``: nats of log-loss; ``max_auc_drop``: AUC units; ``max_ece``: probability units."""

    min_gain: float = 0.0
    max_auc_drop: float = 0.005
    max_ece: float = 0.05


def promotion_decision(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    baseline: dict[str, float],
    rule: PromotionRule = PromotionRule(),
) -> tuple[bool, str]:
    """(promote?, reason) from holdout metric dicts (``log_loss``, ``auc``, ``ece``)."""
    ref_name, ref = ("champion", champion) if champion is not None else ("baseline", baseline)
    gain = ref["log_loss"] - challenger["log_loss"]
    if gain < rule.min_gain or gain <= 0:
        return False, f"holdout log-loss {challenger['log_loss']:.5f} not below {ref_name} {ref['log_loss']:.5f}"
    ref_auc = ref.get("auc", 0.5)
    if ref_auc == ref_auc and challenger["auc"] < ref_auc - rule.max_auc_drop:
        return False, f"holdout AUC {challenger['auc']:.4f} below {ref_name} {ref_auc:.4f} - {rule.max_auc_drop}"
    if challenger["ece"] > rule.max_ece:
        return False, f"holdout ECE {challenger['ece']:.4f} above {rule.max_ece}"
    return True, f"holdout log-loss {challenger['log_loss']:.5f} < {ref_name} {ref['log_loss']:.5f} (gain {gain:.5f})"


def retrain_due(now_ns: int, last_trained_ns: int | None, every_s: float, *, drift_requested: bool = False) -> bool:
    """True when a drift request is pending, no model was trained yet, or ``every_s`` seconds have passed."""
    if drift_requested or last_trained_ns is None:
        return True
    return now_ns - last_trained_ns >= every_s * NS
