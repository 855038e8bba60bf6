"""``bench_vs_sidekiq --sleep``: its options, its table, and the Ruby twins of the jobs
that wait, run by a real Sidekiq (a tiny drain)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks import bench_vs_sidekiq, sleep_vs_sidekiq
from tests.benchmarks.side_by_side import WORKERS_RB
from tests.benchmarks.sleep_vs_sidekiq import SleepRun
from tests.conftest import IN_CI
from tests.interop.sidekiq import SidekiqUnavailableError, ensure_sidekiq
from verk_actors.bench import async_workload, workload
from verk_actors.bench.measure import Progress
from verk_actors.jobs.worker import Worker


def test_without_sleep_the_standard_comparison_is_unchanged() -> None:
    """No --sleep: Sidekiq 2x10 and 1x10 against the node's default, as before."""
    args = bench_vs_sidekiq.parse_args([])
    assert args.sleep is None
    assert args.sidekiq == [(2, 10), (1, 10)]
    assert args.concurrency is None
    assert bench_vs_sidekiq.parse_args(["--sidekiq", "2x10"]).sidekiq == [(2, 10)]


def test_sleep_defaults_to_100_500_1000_in_flight_in_async_mode() -> None:
    """--sleep alone compares at 100, 500 and 1,000 in flight, the node in async:100."""
    args = bench_vs_sidekiq.parse_args(["--sleep", "0.05"])
    assert args.sleep == 0.05
    assert args.in_flight == (100, 500, 1000)
    assert args.verk_mode == ("async", 100)


def test_in_flight_and_verk_mode_are_read() -> None:
    """--in-flight takes a list; --verk-mode takes threads or async with a count."""
    args = bench_vs_sidekiq.parse_args(
        ["--sleep", "0.1", "--in-flight", "50, 200", "--verk-mode", "threads:25"]
    )
    assert args.in_flight == (50, 200)
    assert args.verk_mode == ("threads", 25)
    assert bench_vs_sidekiq.parse_args(["--sleep", "1", "--verk-mode", "async"]).verk_mode == (
        "async",
        100,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--in-flight", "100"],  # without --sleep
        ["--verk-mode", "async:100"],
        ["--sleep", "0.05", "--sidekiq", "2x10"],  # the standard comparison's options
        ["--sleep", "0.05", "--concurrency", "10"],
        ["--sleep", "0"],
        ["--sleep", "0.05", "--in-flight", "100,0"],
        ["--sleep", "0.05", "--in-flight", "many"],
        ["--sleep", "0.05", "--verk-mode", "process"],
        ["--sleep", "0.05", "--verk-mode", "async:x"],
    ],
)
def test_options_that_do_not_fit_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Options that make no sense together, or no sense at all, stop with a message."""
    with pytest.raises(SystemExit) as exited:
        bench_vs_sidekiq.parse_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_the_setting_names_the_node_processes() -> None:
    """The node's setting says how many worker processes of how many jobs it runs."""
    assert SleepRun(100, 0.05, 500).verk_setting == "1 node, 5 x 100 async"
    assert SleepRun(100, 0.05, 50, "threads", 100).verk_setting == "1 node, 1 x 50 threads"
    assert SleepRun(100, 0.05, 1000).ideal == pytest.approx(20_000)


def row(n: int, system: str, rate: float, pss: float) -> dict[str, Any]:
    return {
        "in_flight": n,
        "system": system,
        "setting": "x",
        "drain_jobs_per_s": rate,
        "ideal_jobs_per_s": n / 0.05,
        "ideal_share_pct": 100 * rate / (n / 0.05),
        "node_cpu_us_per_job": 500.0,
        "peak_pss_mb": pss,
        "peak_rss_mb": pss,
        "processes": 1,
        "steal_pct": None,
    }


def test_the_table_shows_failures_and_ratios_per_in_flight() -> None:
    """Each N gets its rows; a failed run reads ``failed``; verk / Sidekiq is per N."""
    rows = [
        row(100, "Sidekiq 6.4.1", 1000.0, 40.0),
        row(100, "verk_actors", 1500.0, 120.0),
        {"in_flight": 1000, "system": "Sidekiq 6.4.1", "setting": "y", "error": "boom"},
        row(1000, "verk_actors", 3000.0, 140.0),
    ]
    lines = sleep_vs_sidekiq.table(rows).splitlines()
    ratio = next(line for line in lines if "verk / Sidekiq" in line)
    assert ratio.split()[:5] == ["100", "verk", "/", "Sidekiq", "1.50x"]
    assert "3.00x" in ratio  # PSS
    failed = next(line for line in lines if line.lstrip().startswith("1,000  Sidekiq"))
    assert failed.split()[-1] == "failed"
    assert sum("verk / Sidekiq" in line for line in lines) == 1  # none against a failure


def bench_workers() -> list[str]:
    """The bench workers of the Python side (classes with a ``perform``)."""
    found = []
    for module in (workload, async_workload):
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, Worker) and value is not Worker:
                found.append(name)
    return found


def test_every_bench_worker_that_sidekiq_runs_has_a_ruby_twin() -> None:
    """The jobs pushed for either side run on Sidekiq: same class names in Ruby."""
    ruby = set(re.findall(r"^class (\w+)", Path(WORKERS_RB).read_text(), re.MULTILINE))
    only_python = {"BenchNoop"}  # ``verk-actors bench --no-incr``; never pushed to Sidekiq
    assert {"BenchSleep", "BenchAsyncSleep"} <= set(bench_workers())
    assert set(bench_workers()) - only_python <= ruby


@pytest.mark.interop
def test_sidekiq_drains_jobs_that_wait_and_is_measured() -> None:
    """A real Sidekiq drains BenchAsyncSleep jobs (the Ruby twin) with the bench's own
    measuring: every job counted, its one process's memory and CPU found."""
    try:
        version = ensure_sidekiq()
    except SidekiqUnavailableError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    run = SleepRun(jobs=40, sleep=0.02, in_flight=10)
    result = sleep_vs_sidekiq.run_sidekiq(run, version, Progress(None))
    assert result.drain.jobs == 40
    assert result.setting == "1 proc x 10 threads"
    assert result.processes == 1
    assert result.peak_pss > 0
    assert result.node_cpu > 0
    # 40 jobs of 20 ms, 10 at a time: at least 4 rounds of sleep.
    assert result.drain.seconds >= 0.06
