"""The RL sizing experiment (issue 17 item 4): a market of feature rows where a policy chooses the position size
(:mod:`.market`, pure numpy), its gymnasium environment (:mod:`.env`, optional extra ``rl``) and PPO written in
JAX + optax (:mod:`.ppo`). The walk-forward against the rule-based sizing is ``flows/rl_experiment.py``
(``make rl-experiment``); results in docs/models.md."""
