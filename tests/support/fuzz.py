"""Byte-level mutation of valid payloads, for the fuzz tests of the decoders (tests/unit/schemas/test_fuzz_decoders.py)
and of the live flow under bad input (tests/integration/flows/test_fuzz_live.py)."""

from __future__ import annotations

import random
import re

#: single bytes, JSON fragments and numbers that a mutation puts into a payload: edge cases of the decoders
INTERESTING = [b"\x00", b"\x7f", b"\x80", b"\xff", b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b" ", b"\n"]
FRAGMENTS = [
    b"null",
    b"true",
    b"false",
    b"[]",
    b"{}",
    b'""',
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b'"\\u0000"',
    b'"' + b"x" * 5000 + b'"',
    b"[" * 200 + b"]" * 200,
    b'{"a":' * 100 + b"1" + b"}" * 100,
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xf0\x9f\x98\x80",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
]
NUMBERS = [
    b"0",
    b"-0",
    b"1e309",
    b"-1e309",
    b"NaN",
    b"Infinity",
    b"1e-400",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"9" * 400,
    b"0.000000000000000000000001",
    b"1.5e18",
    b"-1",
    b"4102444800000000000",
]
_NUM = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def mutate(rng: random.Random, seed: bytes, pool: list[bytes]) -> bytes:
    """1-4 random byte-level edits of ``seed`` (some use another seed of ``pool``)."""
    b = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(10)
        n = len(b)
        if op == 0 and n:
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b.insert(rng.randint(0, n), rng.randrange(256))
        elif op == 2 and n:
            i = rng.randrange(n)
            del b[i : i + rng.randint(1, 16)]
        elif op == 3 and n:
            del b[rng.randrange(n) :]
        elif op == 4:
            other = rng.choice(pool)
            b = b[: rng.randint(0, n)] + bytearray(other[rng.randint(0, len(other)) :])
        elif op == 5 and n:
            b[rng.randrange(n)] = rng.choice(INTERESTING)[0]
        elif op == 6:
            nums = list(_NUM.finditer(bytes(b)))
            if nums:
                m = rng.choice(nums)
                b[m.start() : m.end()] = rng.choice(NUMBERS)
        elif op == 7 and n:
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 64))
            b[i:i] = b[i:j]
        elif op == 8:
            i = rng.randint(0, n)
            b[i:i] = rng.choice(FRAGMENTS)
        else:
            quotes = [m.start() for m in re.finditer(rb'"', bytes(b))]
            if quotes:
                i = rng.choice(quotes) + 1
                b[i:i] = rng.choice(FRAGMENTS[10:] + [b"\\u00e9", b"\\\\", b'\\"', b"\\n"])
    return bytes(b)
