"""The pytest-xdist groups that `make test` schedules by name, and the order in which it hands out work.

`make test` runs pytest-xdist with ``--dist loadgroup --no-loadscope-reorder``: each group (tests sharing what one
process makes once: a moto server, a synthesis, a corpus) is one unit of work, every other test a unit of its own, and
the units are handed out in the order of the tests after ``tests/conftest.py`` sorted them by :func:`schedule_key`: a
process that finishes a unit takes the next. pytest-xdist's own order (``--loadscope-reorder``, its default) is by
the number of tests a unit holds, which put a deploy rehearsal and a fault test, one test each and 11-17 s, at the
end of the queue: the process that took them ran alone for the last 5 s of the run.

The order is longest first, but for two kinds of unit:

- the moto-server group first of all: it is a chain of waits (long polls, visibility timeouts, drains), about 70 s in
  a run, 11 s of it on a CPU, that no other process can shorten, and the rest of the run goes on beside it;
- the slow units that wait about half their time (the fault test and the user data tests) after the other slow tests:
  while the moto-server process waits too, a core would sit idle; after its chain it takes CPU-bound work.

The durations are from one profiled run of `make test` on this project's 2-core machine (2026-12-05); the order, not
the figures, is what the scheduler uses.
"""

from __future__ import annotations

from typing import Final

import pytest

MOTO_SERVER: Final = "moto-server"
"""The session's moto server (``moto_endpoint``) and the tests that mostly wait on it."""
SYNTHESIS: Final = "synthesis"
"""The default app, synthesized once (``synthesized``, ``templates``)."""
CONFIGURATIONS: Final = "configurations"
"""Other configurations, each synthesized once (``synth_with``)."""
CONFIGURATION_MATRIX: Final = "configuration-matrix"
"""Every documented configuration through the gates, synthesized once (tests/unit/stacks/conftest.py)."""
COPIED_PROJECTS: Final = "copied-projects"
EDGE_CASE_CORPUS: Final = "edge-case-corpus"
WORKER_STOP_CLIP: Final = "worker-stop-clip"
USER_DATA: Final = "user-data"

OTHER_SLOW_TESTS: Final = "(every other slow test)"

SCHEDULE: Final = (
    MOTO_SERVER,  # about 70 s, 11 s of it on a CPU
    CONFIGURATION_MATRIX,  # about 40 s
    SYNTHESIS,  # about 33 s
    "tests/integration/test_deploy_rehearsal.py",  # about 16 s
    COPIED_PROJECTS,  # about 11 s
    EDGE_CASE_CORPUS,  # about 9 s
    WORKER_STOP_CLIP,  # about 8 s
    OTHER_SLOW_TESTS,
    "tests/integration/test_end_to_end_faults.py",  # about 11 s, 4-5 s of it waiting
    USER_DATA,  # about 15 s, 8 s of it waiting
)
"""Units in the order they are handed out; every test that is not slow, in a unit not named here, comes after."""


def unit_of(item: pytest.Item) -> str:
    """The unit of work ``item`` belongs to: its xdist group, or else its module (one test, or tests of one module)."""
    group = item.get_closest_marker("xdist_group")
    return str(group.args[0]) if group and group.args else item.nodeid.split("::")[0]


def schedule_key(item: pytest.Item) -> tuple[int, bool]:
    """Where ``item`` goes in the run: its unit's place in :data:`SCHEDULE` (a slow test of a unit not named there
    at :data:`OTHER_SLOW_TESTS`, any other test after them all); tests marked ``last`` after the others of their
    place."""
    unit = unit_of(item)
    if unit in SCHEDULE:
        place = SCHEDULE.index(unit)
    elif item.get_closest_marker("slow"):
        place = SCHEDULE.index(OTHER_SLOW_TESTS)
    else:
        place = len(SCHEDULE)
    return place, item.get_closest_marker("last") is not None
