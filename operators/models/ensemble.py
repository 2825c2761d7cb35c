"""Blend member probabilities with weights that follow each member's recent log-loss.

Formula (discounted Bayesian model averaging / exponentially weighted forecaster):

* every resolved label updates each member's discounted cumulative log-loss
  ``S_i <- gamma * S_i + l_i``, ``l_i = -[y ln p_i + (1 - y) ln(1 - p_i)]`` (nats), ``gamma = 2^(-1/half_life)``;
* a member seen for the first time (or :meth:`LogLossWeights.reset` after a model swap) starts at the worst
  member's ``S``;
* weights ``w_i = exp(-eta * (S_i - min_j S_j)) / sum_k exp(-eta * (S_k - min_j S_j))``;
* blend ``p = sum_i w_i p_i`` (a mixture of the members' calibrated probabilities);
* uncertainty ``u = 2 * sqrt(sum_i w_i (p_i - p)^2)`` in [0, 1] (weighted spread; 0 = members agree).

With ``eta = 1`` and no discounting this is exactly the Bayesian posterior mixture of the members (for log-loss
the weights are the members' likelihoods). ``half_life`` (labels) makes it forget, so the blend follows the
model that has been right recently; ``eta < 1`` blends more evenly. Members that have no prediction at a step
(e.g. no batch model yet) are left out and the others renormalised.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

__all__ = ["LogLossWeights"]


class LogLossWeights:
    """State: ``S`` (discounted log-loss per member, nats); picklable."""

    def __init__(self, half_life: float = 500.0, eta: float = 1.0) -> None:
        self.half_life = float(half_life)
        self.gamma = 2.0 ** (-1.0 / self.half_life)
        self.eta = float(eta)
        self.S: dict[str, float] = {}

    def weights(self, names: Iterable[str]) -> dict[str, float]:
        """Current weights of ``names`` (a member never scored counts as the worst one)."""
        names = list(names)
        if not names:
            return {}
        known = [self.S[n] for n in names if n in self.S]
        lo = min(known) if known else 0.0
        hi = max(known) if known else 0.0
        e = {n: math.exp(-self.eta * (self.S.get(n, hi) - lo)) for n in names}
        z = sum(e.values())
        return {n: v / z for n, v in e.items()}

    def blend(self, probs: Mapping[str, float]) -> tuple[float, float, dict[str, float]]:
        """(blended probability, uncertainty, weights) of the members present in ``probs``."""
        w = self.weights(probs.keys())
        p = sum(w[n] * probs[n] for n in w)
        var = sum(w[n] * (probs[n] - p) ** 2 for n in w)
        return p, min(1.0, 2.0 * math.sqrt(var)), w

    def update(self, y: float, probs: Mapping[str, float]) -> None:
        """Fold one resolved label ``y`` (0/1) against the members' probabilities at the decision."""
        g = self.gamma
        start = max(self.S.values()) if self.S else 0.0
        for n, p in probs.items():
            q = min(max(p, 1e-6), 1 - 1e-6)
            loss = -math.log(q) if y else -math.log1p(-q)
            self.S[n] = g * self.S.get(n, start) + loss

    def reset(self, name: str) -> None:
        """Forget a member's record (e.g. a new model version under the same name): it restarts at the worst
        member's loss and must earn its weight."""
        others = [v for k, v in self.S.items() if k != name]
        if others:
            self.S[name] = max(others)
        else:
            self.S.pop(name, None)
