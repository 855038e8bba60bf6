"""``tests/benchmarks/recovery.py`` runs, checks the recovery and prints its figures."""

from __future__ import annotations

import pytest

from tests.benchmarks import recovery


def test_the_recovery_benchmark_moves_every_job_back(capsys: pytest.CaptureFixture[str]) -> None:
    assert recovery.main(["--jobs", "2500", "--runs", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == recovery.HEADER
    [row] = out[2:]
    jobs, seconds, rate, commands, queued, left = row.split()
    assert jobs == queued == "2,500"
    assert left == "0"
    assert float(seconds) > 0
    assert float(rate.replace(",", "")) > 0
    assert int(commands) >= 3  # one script per 1,000 jobs at least


def test_the_recovery_benchmark_refuses_no_jobs() -> None:
    with pytest.raises(SystemExit):
        recovery.main(["--jobs", "0"])
