"""River online model: standard-scaled logistic regression, predicts at ``t``, learns when the label is known.

Pure and picklable (River models are plain Python objects). Features arrive as the model-feature row (floats,
``names`` order); the output is P(up) as a fraction. The scaler learns only in :meth:`learn_one` (River does not
update unsupervised steps during prediction unless asked), so prediction never touches the state.
"""

from __future__ import annotations

from collections.abc import Sequence

from river import linear_model, optim, preprocessing

__all__ = ["OnlineModel"]


class OnlineModel:
    """``StandardScaler | LogisticRegression(SGD(lr), l2)``; ``n_learned`` labels seen so far."""

    def __init__(self, names: Sequence[str], lr: float = 0.005, l2: float = 1e-4, clip: float = 1e-3) -> None:
        self.names = tuple(names)
        self.lr, self.l2, self.clip = lr, l2, clip
        self.model = preprocessing.StandardScaler() | linear_model.LogisticRegression(
            optimizer=optim.SGD(lr), l2=l2, intercept_lr=lr
        )
        self.n_learned = 0

    def _x(self, row: Sequence[float]) -> dict[str, float]:
        return dict(zip(self.names, row, strict=True))

    def predict_one(self, row: Sequence[float]) -> float:
        """P(up) of one model-feature row (fraction, clipped to [clip, 1 - clip])."""
        p: float = self.model.predict_proba_one(self._x(row)).get(True, 0.5)
        return min(max(p, self.clip), 1 - self.clip)

    def learn_one(self, row: Sequence[float], y: float) -> None:
        """Learn the label ``y`` (0/1) of a row predicted earlier."""
        self.model.learn_one(self._x(row), bool(y))
        self.n_learned += 1
