"""Frozen implementations kept as the references the property tests compare the faster code with, bit for bit
(verbatim but for absolute imports; not used by the project's code):

* ``gate``, ``returns``, ``scenarios``: before the first 2026-12-03 throughput round (commit fd74071);
* ``account_stage``, ``ledger``, ``attribution``, ``account_returns``, ``orders``, ``execution_stage``: the account
  stage and what it uses before the 2026-12-03 12:00 round (commit ae8e5c8; ``tests/unit/operators/account/test_account_reference.py``)."""
