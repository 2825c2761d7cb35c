"""The bars' volume sums are added strictly left to right whatever path computes them (the padded accumulate for
runs of similar length, the pass per position otherwise), so a bar never depends on where a batch split it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.bars import _groups, _seq_sums


def _loop(starts, lengths, values, inits):
    out = []
    for v, i in zip(values, inits, strict=True):
        sums = []
        for r, (s, n) in enumerate(zip(starts, lengths, strict=True)):
            a = float(i[r])
            for x in v[s : s + n]:
                a += float(x)
            sums.append(a)
        out.append(sums)
    return out


runs = st.lists(st.integers(1, 60), min_size=1, max_size=40)


@settings(max_examples=400, deadline=None)
@given(runs, st.integers(0, 2**32 - 1), st.booleans())
def test_sums_equal_a_left_to_right_loop_bit_for_bit(lengths, seed, one_long):
    if one_long:  # a long run among short ones: the per-position path
        lengths = lengths + [400]
    keys = np.repeat(np.arange(len(lengths)), lengths)
    starts, lens = _groups(keys)
    rng = np.random.default_rng(seed)
    n = len(keys)
    values = [rng.exponential(1.0, n) * 10.0 ** rng.uniform(-8, 8, n) for _ in range(4)]
    inits = [rng.exponential(1.0, len(starts)) * (rng.random(len(starts)) < 0.5) for _ in range(4)]
    got = _seq_sums(starts, lens, values, inits)
    assert [g.tolist() for g in got] == _loop(starts, lens, values, inits)


def test_both_paths_are_taken():
    """The padded block for even runs, the per-position pass for one long run among many of length one."""
    even = np.repeat(np.arange(10), 5)
    skewed = np.concatenate([np.arange(300), np.full(2000, 300)])
    for keys in (even, skewed):
        starts, lens = _groups(keys)
        v = [np.linspace(0.1, 1.0, len(keys))] * 4
        got = _seq_sums(starts, lens, v, [np.zeros(len(starts))] * 4)
        assert [g.tolist() for g in got] == _loop(starts, lens, v, [np.zeros(len(starts))] * 4)
    assert len(even) // 5 * 5 <= 4 * len(even) + 64  # even: padded
    assert 4 * len(skewed) + 64 < 301 * 2000  # skewed: per position
