"""The order `make test` hands out work names only units that exist, and `make test` follows it."""

from __future__ import annotations

import re

from tests.support import schedule
from tools.localcloud.paths import REPO_ROOT

TEST_SOURCES = [path for path in (REPO_ROOT / "tests").rglob("*.py") if path.name != "schedule.py"]


def test_every_unit_the_schedule_names_is_a_test_module_or_a_group_tests_join() -> None:
    # GIVEN the constant name of each group in the schedule
    groups = {value: name for name, value in vars(schedule).items() if name.isupper() and isinstance(value, str)}
    for unit in schedule.SCHEDULE:
        if unit == schedule.OTHER_SLOW_TESTS:
            continue
        # THEN a module named there exists, and a group named there is joined by some test: an xdist_group marker or
        # the shared fixtures of tests/conftest.py name its constant
        if unit.endswith(".py"):
            assert (REPO_ROOT / unit).is_file(), unit
            continue
        pattern = re.compile(rf"(xdist_group\(|^\s+){groups[unit]}\b", re.M)
        assert any(pattern.search(path.read_text()) for path in TEST_SOURCES), unit


def test_make_test_hands_out_work_in_the_schedules_order() -> None:
    # GIVEN the Makefile's test target
    recipe = re.search(r"^test: .*\n((?:\t.*\n)+)", (REPO_ROOT / "Makefile").read_text(), re.M)
    # THEN it keeps the order the tests were sorted in (pytest-xdist would otherwise reorder by tests per unit)
    assert recipe is not None and "--dist loadgroup --no-loadscope-reorder" in recipe.group(1)
