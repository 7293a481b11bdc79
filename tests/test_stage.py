"""The stage timer's log: wall seconds and the CPU seconds the stage kept the machine busy."""

from __future__ import annotations

import time
from typing import Any

from bench.common import stage_totals
from pipeline.stage import StageTimer


def test_a_stage_reports_the_cpu_it_burned_not_the_time_it_waited() -> None:
    logged: dict[str, tuple[float, dict[str, Any]]] = {}
    timer = StageTimer(lambda name, seconds, counts: logged.__setitem__(name, (seconds, counts)))
    with timer.stage("waiting"):
        time.sleep(0.2)
    with timer.stage("working"):
        end = time.process_time() + 0.2
        while time.process_time() < end:
            pass
    waited, waiting = logged["waiting"]
    worked, working = logged["working"]
    assert waited >= 0.2 and waiting["cpu_seconds"] < 0.1
    assert working["cpu_seconds"] >= 0.2 and worked >= 0.2


def test_bench_sums_each_stage_over_partitions_seconds_and_cpu_alike() -> None:
    log = "\n".join(
        [
            '{"stage": "evidence", "seconds": 2.0, "cpu_seconds": 3.5, "peak_mb": 100.0}',
            "some other line",
            '{"stage": "evidence", "seconds": 1.0, "cpu_seconds": 1.5, "peak_mb": 300.0}',
            '{"stage": "cluster", "seconds": 4.0, "peak_mb": 50.0}',
        ]
    )
    assert stage_totals(log) == {
        "evidence": {"seconds": 3.0, "cpu_seconds": 5.0, "peak_mb": 300.0},
        "cluster": {"seconds": 4.0, "cpu_seconds": 0.0, "peak_mb": 50.0},
    }
