"""What holds for the whole suite: the hypothesis profile of ``make test``, a skipped test failing under ``make test``
(LEVIBOT_REQUIRE_SERVICES=1, so a CI run can never pass with its integration tests silently skipped), and the order
in which the slowest modules start. The fixtures of the real services are in tests/integration/conftest.py: a test
outside tests/integration/ cannot ask for a service.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings as hypothesis_settings

# Under `make test` the property tests draw the same examples every run (derandomised): CI must not turn red
# because one run happened to draw a new example. Exploration with fresh examples: run pytest directly.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("LEVIBOT_REQUIRE_SERVICES") == "1":
    hypothesis_settings.load_profile("ci")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("LEVIBOT_REQUIRE_SERVICES") == "1" and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped under LEVIBOT_REQUIRE_SERVICES=1 (not allowed in CI): {report.longrepr}"


#: The slowest test modules (measured, see docs/performance.md "Test suite time"), longest first. Under `make test` the
#: suite runs on several pytest-xdist workers, one module per worker at a time (``--dist loadfile``, in collection
#: order): starting the long ones first keeps one of them from being the last thing still running at the end.
SLOWEST_FIRST = (
    "test_alerts_live.py",
    "test_flow_recovery.py",
    "test_faults.py",
    "test_replay_e2e.py",
    "test_paper_venue_live.py",
    "test_control_live.py",
    "test_api_console_browser.py",
    "test_flow_scaleout.py",
    "test_faults_clickhouse.py",
    "test_schemas.py",
    "test_api_fuzz.py",
    "test_strategies.py",
    "test_safe_defaults.py",
    "test_remote_cancels_live.py",
    "test_fuzz_live.py",
    "test_api_flow_live.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
