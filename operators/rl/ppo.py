"""Proximal policy optimisation (Schulman et al. 2017, the clipped objective) in JAX + optax, CPU, seeded.

Actor: MLP ``obs -> 64 -> 64 -> len(SIZES)`` (tanh), a categorical policy over the target sizes; critic: the same
shape to one value. Rollouts: ``n_envs`` episodes of :class:`~.market.VecMarket` stepped ``n_steps`` bars with
actions sampled in numpy (seeded) from the numpy forward of the current actor; advantages by GAE(γ, λ),
normalised per batch; ``n_epochs`` passes of minibatch updates of the clipped surrogate + value loss − entropy
bonus (Adam, gradient norm clipped). Rewards are multiplied by ``reward_scale`` for learning only.

The trained :class:`Policy` is numpy weights; :meth:`Policy.act` is the greedy (most probable) action, used in
the walk-forward.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from operators.models.sequence import _jax

from .market import SIZES, MarketData, VecMarket, observe

if TYPE_CHECKING:  # JAX is an optional extra, imported on first use
    from jax import Array

__all__ = ["PpoConfig", "Policy", "train_ppo", "mlp_forward"]


@dataclass(frozen=True)
class PpoConfig:
    n_envs: int = 16
    n_steps: int = 256
    episode_len: int = 1024
    updates: int = 60
    n_epochs: int = 4
    minibatch: int = 512
    learning_rate: float = 3e-4
    gamma: float = 0.99
    lam: float = 0.95
    clip: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: int = 64
    reward_scale: float = 100.0
    seed: int = 11


def _init(rng: np.random.Generator, sizes: list[int], last_scale: float) -> dict[str, np.ndarray]:
    w = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        q = np.linalg.qr(rng.normal(size=(max(a, b), max(a, b))))[0][:a, :b]
        g = last_scale if i == len(sizes) - 2 else math.sqrt(2.0)
        w[f"W{i}"] = (q * g).astype(np.float32)
        w[f"b{i}"] = np.zeros(b, np.float32)
    return w


@overload
def mlp_forward(w: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray: ...
@overload
def mlp_forward(w: Mapping[str, Array], x: Array, tanh: Callable[[Array], Array]) -> Array: ...
def mlp_forward(w: Mapping[str, Any], x: Any, tanh: Callable[[Any], Any] = np.tanh) -> Any:  # numpy or JAX arrays
    """``x -> tanh(x W0 + b0) -> tanh(. W1 + b1) -> . W2 + b2`` (numpy, or jax.numpy with ``tanh=jnp.tanh``)."""
    h = tanh(x @ w["W0"] + w["b0"])
    h = tanh(h @ w["W1"] + w["b1"])
    return h @ w["W2"] + w["b2"]


class Policy:
    """Greedy sizing policy (numpy actor weights)."""

    def __init__(self, actor: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.actor = {k: np.asarray(v, np.float64) for k, v in actor.items()}
        self.info = info

    def logits(self, obs: np.ndarray) -> np.ndarray:
        return mlp_forward(self.actor, np.asarray(obs, np.float64))

    def act(self, obs: np.ndarray) -> np.ndarray:
        best: np.ndarray = np.argmax(self.logits(np.atleast_2d(obs)), axis=1)
        return best

    def run(self, m: MarketData, lo: int, hi: int) -> np.ndarray:
        """Greedy targets (fraction of the full position) at rows ``lo .. hi-1`` of one segment, from flat."""
        out = np.zeros(hi - lo)
        pos = 0.0
        for i, r in enumerate(range(lo, hi)):
            pos = float(SIZES[int(self.act(observe(m, np.array([r]), np.array([pos])))[0])])
            out[i] = pos
        return out


def train_ppo(m: MarketData, cfg: PpoConfig = PpoConfig()) -> Policy:
    """PPO on the sizing market ``m`` (module doc); deterministic for a given ``cfg.seed``."""
    _jax()
    import jax
    import jax.numpy as jnp
    import optax

    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    d, k = m.obs_dim, SIZES.size
    params = {
        "pi": _init(rng, [d, cfg.hidden, cfg.hidden, k], 0.01),
        "v": _init(rng, [d, cfg.hidden, cfg.hidden, 1], 1.0),
    }
    params = jax.tree_util.tree_map(jnp.asarray, params)
    opt = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.learning_rate, eps=1e-5))
    state = opt.init(params)

    def loss_fn(
        p: dict[str, dict[str, Array]], obs: Array, act: Array, old_logp: Array, adv: Array, ret: Array
    ) -> tuple[Array, tuple[Array, Array, Array]]:
        logits = mlp_forward(p["pi"], obs, jnp.tanh)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, act[:, None], axis=1)[:, 0]
        ratio = jnp.exp(logp - old_logp)
        pg = -jnp.mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - cfg.clip, 1 + cfg.clip) * adv))
        v = mlp_forward(p["v"], obs, jnp.tanh)[:, 0]
        vl = 0.5 * jnp.mean((v - ret) ** 2)
        ent = -jnp.mean(jnp.sum(jnp.exp(logp_all) * logp_all, axis=1))
        return pg + cfg.vf_coef * vl - cfg.ent_coef * ent, (pg, vl, ent)

    @jax.jit
    def update(
        p: dict[str, dict[str, Array]], s: Any, obs: Array, act: Array, old_logp: Array, adv: Array, ret: Array
    ) -> tuple[dict[str, dict[str, Array]], Any, tuple[Array, Array, Array]]:
        (_loss, aux), g = jax.value_and_grad(loss_fn, has_aux=True)(p, obs, act, old_logp, adv, ret)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, aux

    env = VecMarket(m, cfg.n_envs, cfg.episode_len, cfg.seed + 1)
    T, N = cfg.n_steps, cfg.n_envs
    hist = []
    for u in range(cfg.updates):
        pn = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
        obs_b = np.zeros((T, N, d), np.float32)
        act_b = np.zeros((T, N), np.int64)
        logp_b = np.zeros((T, N))
        val_b = np.zeros((T + 1, N))
        rew_b = np.zeros((T, N))
        done_b = np.zeros((T, N))
        raw = 0.0
        for t in range(T):
            o = env.obs()
            lg = mlp_forward(pn["pi"], o.astype(np.float64))
            lg = lg - lg.max(axis=1, keepdims=True)
            pr = np.exp(lg)
            pr /= pr.sum(axis=1, keepdims=True)
            a = (pr.cumsum(axis=1) < rng.random((N, 1))).sum(axis=1).clip(0, k - 1)
            obs_b[t], act_b[t] = o, a
            logp_b[t] = np.log(pr[np.arange(N), a])
            val_b[t] = mlp_forward(pn["v"], o.astype(np.float64))[:, 0]
            r, done = env.step(a)
            raw += float(r.sum())
            rew_b[t], done_b[t] = r * cfg.reward_scale, done
        val_b[T] = mlp_forward(pn["v"], env.obs().astype(np.float64))[:, 0]
        adv = np.zeros((T, N))
        last = np.zeros(N)
        for t in range(T - 1, -1, -1):
            nonterm = 1.0 - done_b[t]
            delta = rew_b[t] + cfg.gamma * val_b[t + 1] * nonterm - val_b[t]
            last = delta + cfg.gamma * cfg.lam * nonterm * last
            adv[t] = last
        ret = adv + val_b[:T]

        def flat(a: np.ndarray) -> np.ndarray:
            return a.reshape(T * N, *a.shape[2:])

        OBS, A, LP, ADV, RET = flat(obs_b), flat(act_b), flat(logp_b), flat(adv), flat(ret)
        ADV = (ADV - ADV.mean()) / (ADV.std() + 1e-8)
        n = T * N
        mb = min(cfg.minibatch, n)
        for _ in range(cfg.n_epochs):
            perm = rng.permutation(n)
            for i in range(0, n - mb + 1, mb):
                j = perm[i : i + mb]
                params, state, aux = update(
                    params,
                    state,
                    jnp.asarray(OBS[j]),
                    jnp.asarray(A[j]),
                    jnp.asarray(LP[j], jnp.float32),
                    jnp.asarray(ADV[j], jnp.float32),
                    jnp.asarray(RET[j], jnp.float32),
                )
        hist.append({"update": u, "reward_per_step": raw / (T * N), "entropy": float(aux[2])})
    actor = {k2: np.asarray(v) for k2, v in params["pi"].items()}
    return Policy(
        actor,
        {
            "config": asdict(cfg),
            "train_seconds": time.perf_counter() - t0,
            "steps": cfg.updates * T * N,
            "history": hist,
        },
    )
