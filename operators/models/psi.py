"""Population stability index (PSI) of features against a reference (training) window.

``PSI = sum_b (a_b - e_b) * ln(a_b / e_b)`` over bins ``b`` whose edges are the reference's deciles; ``e_b`` /
``a_b`` are the reference / actual fractions per bin, floored at ``1e-4``. Rules of thumb: < 0.1 stable,
0.1-0.25 moderate shift, > 0.25 significant shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PsiReference", "psi"]

_FLOOR = 1e-4


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI between two fraction vectors over the same bins (each floored at 1e-4)."""
    e = np.maximum(np.asarray(expected, float), _FLOOR)
    a = np.maximum(np.asarray(actual, float), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class PsiReference:
    """Per-feature inner bin edges (``n_bins - 1`` quantiles of the reference) and reference fractions."""

    names: tuple[str, ...]
    edges: list[np.ndarray]
    fractions: list[np.ndarray]

    @classmethod
    def fit(cls, X: np.ndarray, names: tuple[str, ...] | list[str], n_bins: int = 10) -> PsiReference:
        """Reference from rows ``X`` (n, k) of the training window."""
        X = np.asarray(X, float)
        edges, fracs = [], []
        qs = np.linspace(0, 1, n_bins + 1)[1:-1]
        for j in range(X.shape[1]):
            col = X[:, j][np.isfinite(X[:, j])]
            e = np.unique(np.quantile(col, qs)) if col.size else np.zeros(0)
            edges.append(e)
            fracs.append(cls._fractions(col, e))
        return cls(tuple(names), edges, fracs)

    @staticmethod
    def _fractions(col: np.ndarray, e: np.ndarray) -> np.ndarray:
        b = np.searchsorted(e, col, side="right")
        c = np.bincount(b, minlength=e.size + 1).astype(float)
        frac: np.ndarray = c / max(c.sum(), 1.0)
        return frac

    def compute(self, X: np.ndarray) -> dict[str, float]:
        """PSI of each feature of the rows ``X`` (n, k), same column order as the reference."""
        X = np.asarray(X, float)
        return {
            n: psi(f, self._fractions(X[:, j][np.isfinite(X[:, j])], e))
            for j, (n, e, f) in enumerate(zip(self.names, self.edges, self.fractions, strict=True))
        }
