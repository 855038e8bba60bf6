"""``tests/benchmarks/trickle.py`` runs and prints its figures (a short run)."""

from __future__ import annotations

import pytest

from tests.benchmarks import trickle


def test_the_trickle_benchmark_prints_a_row_per_rate(capsys: pytest.CaptureFixture[str]) -> None:
    assert trickle.main(["--rate", "200", "--seconds", "0.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == trickle.HEADER
    [row] = out[2:]
    asked, reached, share, _, per_job, commands, p50, p99 = row.split()[:8]
    assert asked == "200"
    assert float(reached.replace(",", "")) > 50
    assert float(share) > 0  # the node's processes were found and measured
    assert float(per_job.replace(",", "")) > 0
    assert float(commands) >= 2  # at least the enqueue's and the BLMOVE per job
    assert 0 < float(p50) <= float(p99)
    assert "WorkerActor" in row
