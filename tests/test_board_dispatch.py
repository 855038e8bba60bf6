"""The progress board shared by a worker and its manager, and the batch arithmetic."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.conftest import IN_CI
from verk_actors.actors.messages import (
    InitWorkersManager,
    JobsDequeued,
    JobsDone,
    RecordOutcomes,
    RunJobs,
)
from verk_actors.actors.queue import _board as board
from verk_actors.actors.queue import _settle as settle
from verk_actors.actors.queue._batches import (
    MAX_BATCH_BYTES,
    MAX_IN_PROGRESS,
    MAX_REQUEST,
    TARGET_BATCH_SECONDS,
    BatchSizer,
    bounded_batch,
    jobs_wanted,
    share,
)
from verk_actors.actors.queue._board import (
    FAILED,
    GIVEN_BACK,
    MAX_JOBS,
    NOT_STARTED,
    RUNNING,
    SUCCEEDED,
    Board,
)
from verk_actors.actors.queue._cpu_gauge import CpuGauge, cpu_clock, machine_cores
from verk_actors.actors.queue._slots import FREE, Slot
from verk_actors.actors.queue._standby import BACKLOG_AT_LEAST
from verk_actors.actors.queue.workers_manager import WorkersManager
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import Settings
from verk_actors.jobs.job import Job


@pytest.fixture
def boards(tmp_path: Path) -> Iterator[tuple[Board, Board]]:
    """(worker's mapping, manager's mapping) of one new board file."""
    manager = Board.create(tmp_path)
    worker = Board(manager.path)
    manager.unlink()
    yield worker, manager
    worker.close()
    manager.close()


def test_create_makes_a_private_zeroed_file(tmp_path: Path) -> None:
    """A new board is a zeroed file of the board size, readable only by its owner."""
    b = Board.create(tmp_path)
    try:
        assert b.path.parent == tmp_path
        assert b.path.stat().st_size == board.SIZE
        assert b.path.stat().st_mode & 0o777 == 0o600
        assert b.path.read_bytes() == bytes(board.SIZE)
        assert b.running()[0] == 0  # batch 0: none yet (batches are numbered from 1)
    finally:
        b.close()
    assert not b.path.exists()


def test_statuses_follow_the_worker(boards: tuple[Board, Board]) -> None:
    """The manager's mapping sees begin_batch, job_started and job_ended written by the worker."""
    worker, manager = boards
    worker.begin_batch(7, 4)
    assert manager.statuses(7, 4) == [NOT_STARTED] * 4
    assert manager.running() == (7, -1, 0.0, 0.0)
    assert worker.job_started(7, 0, 123.5, 100.25)
    assert manager.statuses(7, 4) == [RUNNING, NOT_STARTED, NOT_STARTED, NOT_STARTED]
    assert manager.running() == (7, 0, 123.5, 100.25)
    worker.job_ended(7, 0, ok=True)
    worker.job_started(7, 1, 0.0, 101.0)
    worker.job_ended(7, 1, ok=False)
    worker.job_started(7, 2, 456.25, 102.5)
    assert manager.statuses(7, 4) == [SUCCEEDED, FAILED, RUNNING, NOT_STARTED]
    assert manager.running() == (7, 2, 456.25, 102.5)
    assert manager.running().started == 102.5
    worker.job_ended(7, 2, ok=True)
    assert manager.running() == (7, -1, 0.0, 0.0)
    assert manager.statuses(7, 4) == [SUCCEEDED, FAILED, SUCCEEDED, NOT_STARTED]


def test_statuses_of_another_batch_are_not_started(boards: tuple[Board, Board]) -> None:
    """Statuses asked for a batch other than the current one are all NOT_STARTED."""
    worker, manager = boards
    worker.begin_batch(1, 3)
    worker.job_started(1, 0, 0.0, 1.0)
    worker.job_ended(1, 0, ok=True)
    assert manager.statuses(2, 3) == [NOT_STARTED] * 3
    assert manager.statuses(0, 3) == [NOT_STARTED] * 3
    assert manager.statuses(1, 3)[0] == SUCCEEDED


def test_begin_batch_clears_previous_statuses(boards: tuple[Board, Board]) -> None:
    """A new batch starts with every status cleared, even where the last batch was longer."""
    worker, manager = boards
    worker.begin_batch(1, 5)
    for i in range(5):
        worker.job_started(1, i, 0.0, 1.0)
        worker.job_ended(1, i, ok=False)
    worker.begin_batch(2, 5)
    assert manager.statuses(2, 5) == [NOT_STARTED] * 5


def test_largest_batch_fits(boards: tuple[Board, Board]) -> None:
    """A batch of MAX_JOBS jobs can mark its last job."""
    worker, manager = boards
    worker.begin_batch(3, MAX_JOBS)
    worker.job_started(3, MAX_JOBS - 1, 9.0, 1.0)
    worker.job_ended(3, MAX_JOBS - 1, ok=True)
    assert manager.statuses(3, MAX_JOBS)[-1] == SUCCEEDED
    assert manager.statuses(3, MAX_JOBS).count(NOT_STARTED) == MAX_JOBS - 1


def test_take_back_takes_the_jobs_not_started(boards: tuple[Board, Board]) -> None:
    """The manager takes back the jobs behind the running one that have not started;
    the worker gives back the next one it reaches, and a second take-back takes nothing."""
    worker, manager = boards
    if not worker.allow_take_back():
        no_membarrier()
    assert manager.can_take_back()
    worker.begin_batch(4, 6)
    assert worker.job_started(4, 0, 0.0, 1.0)
    worker.job_ended(4, 0, ok=True)
    assert worker.job_started(4, 1, 0.0, 2.0)
    assert manager.take_back(3, 2, 6) == []  # not the batch it runs
    assert manager.take_back(4, 2, 6) == [2, 3, 4, 5]
    assert manager.take_back(4, 3, 6) == []  # once per batch
    worker.job_ended(4, 1, ok=False)
    assert not worker.job_started(4, 2, 0.0, 3.0)
    worker.job_given_back(4, 2)
    assert manager.statuses(4, 6) == [SUCCEEDED, FAILED, GIVEN_BACK, 0, 0, 0]
    assert manager.running().job == -1
    worker.begin_batch(5, 3)  # the next batch is the worker's again
    assert worker.job_started(5, 2, 0.0, 4.0)


def test_a_worker_that_did_not_register_keeps_its_jobs(boards: tuple[Board, Board]) -> None:
    """Without the worker's part of the memory barriers nothing is taken back from it."""
    worker, manager = boards
    worker.begin_batch(1, 3)
    assert worker.job_started(1, 0, 0.0, 1.0)
    assert not manager.can_take_back()
    assert manager.take_back(1, 1, 3) == []
    worker.job_ended(1, 0, ok=True)
    assert worker.job_started(1, 1, 0.0, 1.0)


def no_membarrier() -> None:
    """Skip (fail in CI): the system has no expedited membarrier(2) (Linux 4.16+)."""
    reason = "membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) is not available here"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _stall_between_lines(seed: int) -> None:
    """Pause a few random microseconds before each line of the board's code that runs
    in this process, so the manager's take-back lands between any two of its steps."""
    rng = random.Random(seed)

    def each_line(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            until = time.perf_counter() + rng.choice((0, 0, 5e-6, 2e-5, 5e-5))
            while time.perf_counter() < until:
                pass
        return each_line

    def each_call(frame: FrameType, event: str, arg: Any) -> Any:
        return each_line if frame.f_code.co_filename == board.__file__ else None

    sys.settrace(each_call)


def _race_worker(path: str, batches: int, size: int, orders: Any, done: Any) -> None:
    """The worker side of the race test: runs each batch it is told to, jobs of a few
    microseconds, giving back the first job it finds taken back."""
    _stall_between_lines(batches)
    worker = Board(Path(path))
    done.send(worker.allow_take_back())
    for batch in range(1, batches + 1):
        orders.recv()
        worker.begin_batch(batch, size)
        done.send("begun")
        for index in range(size):
            if not worker.job_started(batch, index, 0.0, 1.0):
                worker.job_given_back(batch, index)
                break
            for _ in range(index % 7 * 10):
                pass
            worker.job_ended(batch, index, ok=True)
        done.send("ended")


def test_a_job_is_run_or_taken_back_never_both(tmp_path: Path) -> None:
    """A worker process runs 1,500 batches of quick jobs while the manager takes back
    the rest of each batch at a random moment: every job ends up run by the worker,
    taken back, or given back unrun (and then sent back to the queue), exactly one of
    the three; none is lost."""
    context = multiprocessing.get_context("fork")
    manager = Board.create(tmp_path)
    orders, worker_orders = context.Pipe()
    done, worker_done = context.Pipe()
    batches, size = 1500, 40
    process = context.Process(
        target=_race_worker, args=(str(manager.path), batches, size, worker_orders, worker_done)
    )
    process.start()
    rng = random.Random(20)
    outcomes = {"taken": 0, "ran": 0, "given back": 0}
    try:
        if not done.recv():
            no_membarrier()
        for batch in range(1, batches + 1):
            orders.send("go")
            assert done.recv() == "begun"
            for _ in range(rng.randrange(0, 400)):
                pass
            first = rng.randrange(1, size)
            taken = manager.take_back(batch, first, size)
            assert done.recv() == "ended"
            statuses = manager.statuses(batch, size)
            for index in range(first, size):
                status = statuses[index]
                if index in taken:
                    # Not started, or reached and given back by the worker: never run.
                    assert status in (NOT_STARTED, GIVEN_BACK), f"batch {batch}: job {index} ran"
                    outcomes["taken"] += 1
                elif status == SUCCEEDED:
                    outcomes["ran"] += 1
                elif status == GIVEN_BACK:
                    outcomes["given back"] += 1
                else:
                    pytest.fail(f"batch {batch}: job {index} neither ran nor was taken back")
            assert statuses.count(GIVEN_BACK) <= 1
            assert NOT_STARTED not in statuses[:first], f"batch {batch}: stopped early"
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
        manager.close()
    assert process.exitcode == 0
    # The race was run both ways: some batches ended before the take-back, some not.
    assert outcomes["taken"] > 0 and outcomes["ran"] > 0, outcomes


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = multiprocessing.get_context("fork").Process(target=lambda: None)
    child.start()
    child.join()
    assert child.pid is not None
    return child.pid


def test_sweep_removes_the_boards_of_dead_managers_only(tmp_path: Path) -> None:
    """Boards named for a process that is gone are removed; a live one's, and files
    that are not boards, are kept."""
    dead = tmp_path / f"{board.PREFIX}{_dead_pid()}-abc"
    live = tmp_path / f"{board.PREFIX}{os.getpid()}-def"
    other = tmp_path / "verk-board-notapid-x"
    unrelated = tmp_path / "something-else"
    for path in (dead, live, other, unrelated):
        path.write_bytes(b"")
    assert board.sweep_orphans(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, other, unrelated)
    )


def test_board_dir_is_writable() -> None:
    """board_dir is a writable directory (shared memory when there is some)."""
    assert os.access(board.board_dir(), os.W_OK)


# --- dispatch --------------------------------------------------------------------------------


def test_batch_sizer_starts_at_one() -> None:
    """Before any job finishes, the batch size is 1."""
    assert BatchSizer(max_batch=100).size == 1


def test_batch_sizer_grows_for_fast_jobs() -> None:
    """Fast jobs grow the batch towards TARGET_BATCH_SECONDS of work, capped at max_batch."""
    sizer = BatchSizer(max_batch=100)
    sizer.observe(TARGET_BATCH_SECONDS / 10)
    assert sizer.size == 10
    for _ in range(50):
        sizer.observe(0.000_01)
    assert sizer.size == 100
    small = BatchSizer(max_batch=5)
    small.observe(0.000_001)
    assert small.size == 5
    instant = BatchSizer(max_batch=7)
    instant.observe(0.0)
    assert instant.size == 7


def test_batch_sizer_one_for_slow_jobs() -> None:
    """Jobs slower than the target are handed out one at a time."""
    sizer = BatchSizer(max_batch=100)
    for _ in range(20):
        sizer.observe(0.001)
    assert sizer.size > 1
    for _ in range(50):
        sizer.observe(2.0)
    assert sizer.size == 1


def test_batch_sizer_caps_the_bytes_of_a_batch() -> None:
    """Big job texts make small batches: about MAX_BATCH_BYTES of text at most, never
    fewer than one job; small texts leave the size to the durations."""
    sizer = BatchSizer(max_batch=500)
    sizer.observe(0.000_01)
    assert sizer.size == 500
    sizer.observe_texts(100, 100 * 200)
    assert sizer.size == 500
    for _ in range(20):
        sizer.observe_texts(10, 10 * 100_000)
    assert sizer.size == pytest.approx(MAX_BATCH_BYTES / 100_000, abs=1)
    sizer.observe_texts(1, 50 * MAX_BATCH_BYTES)
    assert sizer.size == 1
    for _ in range(40):
        sizer.observe_texts(50, 50 * 300)
    assert sizer.size == 500
    sizer.observe_texts(0, 0)
    assert sizer.text_bytes == pytest.approx(300, rel=0.01)


def test_batch_sizer_moving_average() -> None:
    """The average moves by a fifth of the difference to each new duration."""
    sizer = BatchSizer(max_batch=100)
    sizer.observe(1.0)
    sizer.observe(2.0)
    assert sizer.average == pytest.approx(1.2)


@pytest.mark.parametrize(
    ("free", "batch", "held", "wanted"),
    [
        (0, 10, 0, 0),
        (3, 1, 0, 3),
        (3, 10, 5, 25),
        (4, 10, 50, 0),
        (200, 100, 0, MAX_REQUEST),
        (200, 100, 10, MAX_IN_PROGRESS - 10),
        (2, 10, MAX_REQUEST, 0),
        (0, 10, -30, 30),
    ],
)
def test_jobs_wanted(free: int, batch: int, held: int, wanted: int) -> None:
    """Ask for a batch per free worker minus jobs held (negative: prefetch still missing),
    never below 0 or above MAX_REQUEST, nor past MAX_IN_PROGRESS jobs in hand."""
    assert jobs_wanted(free, batch, held) == wanted


@pytest.mark.parametrize(
    ("free", "batch", "held", "prefetch", "in_workers", "wanted"),
    [
        (0, 500, 0, 1500, 0, 1500),  # nothing held: the prefetch
        (0, 500, 400, 1500, 1500, 100),  # 3 batches running: room for 500 held in all
        (1, 500, 0, 1500, 1500, 500),  # a free worker: its batch, within the bound
        (0, 500, 600, 1500, 1500, 0),  # over the bound (a late answer): nothing
        (0, 80, 0, 2000, 1900, 100),  # 25 busy workers of 76 jobs: 100 more at most
        (0, 1, 0, 0, 3, 0),  # slow jobs: no prefetch
    ],
)
def test_jobs_wanted_stay_within_the_bound(
    *, free: int, batch: int, held: int, prefetch: int, in_workers: int, wanted: int
) -> None:
    """The prefetch is asked for only as far as the jobs in the workers' batches and
    those held stay within MAX_IN_PROGRESS."""
    assert jobs_wanted(free, batch, held, prefetch=prefetch, in_workers=in_workers) == wanted


@pytest.mark.parametrize(
    ("size", "active", "bounded"),
    [(500, 3, 500), (500, 5, 333), (90, 25, 76), (10, 25, 10), (500, 0, 500), (1, 3000, 1)],
)
def test_bounded_batch(size: int, active: int, bounded: int) -> None:
    """Batches shrink so that every busy worker holds one and one more is ready, within
    MAX_IN_PROGRESS; never below one job."""
    assert bounded_batch(size, active) == bounded
    assert bounded * (max(active, 1) + 1) <= MAX_IN_PROGRESS or bounded == 1


@pytest.mark.parametrize(
    ("held", "free", "batch", "given"),
    [(0, 3, 10, 0), (5, 0, 10, 0), (10, 3, 10, 4), (10, 3, 2, 2), (1, 5, 10, 1), (100, 1, 10, 10)],
)
def test_share(held: int, free: int, batch: int, given: int) -> None:
    """The next free worker gets its even share of held jobs, at least 1, at most a batch."""
    assert share(held, free, batch) == given


def test_cpu_gauge_uses_a_worker_per_core_until_it_knows() -> None:
    """Before any report: one worker per core (never more than the pool); once
    unmeasured jobs have run long, the whole pool."""
    assert CpuGauge(2).active_limit(25) == 2
    assert CpuGauge(4).active_limit(3) == 3
    assert CpuGauge(2).active_limit(25, long_jobs=True) == 25


@pytest.mark.parametrize(
    ("cores", "load", "pool", "limit"),
    [
        (2, (0.1, 0.1, 0.0), 25, 2),  # CPU-bound: one busy worker per core
        (2, (0.1, 0.05, 0.0), 25, 4),  # half the time waiting on I/O: twice the cores
        (2, (0.1, 0.03, 0.0), 25, 7),
        (2, (0.1, 0.001, 0.0), 25, 25),  # mostly waiting: the whole pool
        (2, (0.1, 0.001, 0.0), 5, 5),  # never more than the pool
        (4, (0.1, 0.1, 0.0), 3, 3),
        (2, (0.2, 0.05, 0.1), 25, 4),  # waiting for a CPU is not waiting on I/O
    ],
)
def test_cpu_gauge_sizes_the_active_workers(
    cores: int, load: tuple[float, float, float], pool: int, limit: int
) -> None:
    gauge = CpuGauge(cores)
    gauge.observe(*load)
    assert gauge.active_limit(pool) == limit


def test_cpu_gauge_sums_short_spans_into_one_sample() -> None:
    gauge = CpuGauge(2)
    gauge.observe(0.1, 0.0, 0.0)  # no CPU accounting: ignored
    for _ in range(9):
        gauge.observe(0.002, 0.001, 0.0)
    assert gauge.share is None
    gauge.observe(0.002, 0.001, 0.0)
    assert gauge.share == pytest.approx(0.5)
    assert gauge.active_limit(25) == 4


def test_cpu_gauge_follows_a_change_of_jobs() -> None:
    gauge = CpuGauge(2)
    gauge.observe(0.1, 0.1, 0.0)
    for _ in range(20):
        gauge.observe(0.1, 0.002, 0.0)
    assert gauge.active_limit(25) == 25


def test_machine_cores_and_cpu_clock() -> None:
    assert machine_cores() >= 1
    on_cpu, waiting = cpu_clock()
    sum(range(2_000_000))
    later, waited = cpu_clock()
    assert later > on_cpu > 0
    assert waited >= waiting >= 0


def test_a_batch_ends_only_when_every_report_is_in(tmp_path: Path) -> None:
    """Thespian may deliver a worker's ``finished`` report before an earlier one: the
    batch stays open until all of them have come."""
    slot = Slot(0, None, Board.create(tmp_path))
    slot.begin(7, [], 0.0)
    assert not slot.note_report(3, finished=True)  # the third and last, first
    assert not slot.note_report(1, finished=False)
    assert slot.note_report(2, finished=False)
    slot.begin(8, [], 0.0)
    assert slot.note_report(1, finished=True)  # a batch of one report
    slot.board.close()


def test_board_holds_a_standby_job_text(boards: tuple[Board, Board]) -> None:
    """The worker keeps the text of the job it took; the manager reads it back. A text
    longer than the board holds is refused; one as long as it holds fits alone."""
    worker, manager = boards
    assert manager.held_texts() == []
    assert worker.hold_text(0, b'{"jid":"a"}')
    assert manager.held_texts() == [(0, b'{"jid":"a"}')]
    assert not worker.hold_text(1, b"x" * (board.MAX_TEXT + 1))
    assert manager.held_texts() == [(0, b'{"jid":"a"}')]
    assert not worker.hold_text(1, b"y" * board.MAX_TEXT)  # no room beside the first
    worker.keep_texts_from(1)
    assert manager.held_texts() == []
    assert worker.hold_text(1, b"y" * board.MAX_TEXT)
    assert manager.held_texts() == [(1, b"y" * board.MAX_TEXT)]


def test_board_holds_the_texts_not_yet_reported(boards: tuple[Board, Board]) -> None:
    """Texts pile up in order until the worker forgets those whose report is out;
    the rest move to the front and keep their indexes."""
    worker, manager = boards
    texts = [f'{{"jid":"{n}","pad":"{"p" * n}"}}'.encode() for n in range(6)]
    for index, text in enumerate(texts):
        assert worker.hold_text(index, text)
    assert manager.held_texts() == list(enumerate(texts))
    worker.keep_texts_from(4)
    assert manager.held_texts() == [(4, texts[4]), (5, texts[5])]
    assert worker.hold_text(6, b"six")
    assert manager.held_texts() == [(4, texts[4]), (5, texts[5]), (6, b"six")]
    worker.keep_texts_from(2)  # already gone: nothing changes
    assert manager.held_texts()[0] == (4, texts[4])
    with pytest.raises(ValueError, match="does not follow"):
        worker.hold_text(9, b"nine")
    worker.keep_texts_from(7)
    assert manager.held_texts() == []
    assert worker.hold_text(9, b"nine")  # an empty board takes any index
    worker.forget_texts()
    assert manager.held_texts() == []


def test_a_dead_standby_is_settled_from_its_board(tmp_path: Path) -> None:
    """A standby worker died in its fourth job: the first was reported, the third too
    (its report overtook the second's, which never came), the second failed. The
    manager adopts the texts its board still holds and settles each job by its own
    number: the second failed, the fourth died running, none is acked twice."""
    manager = WorkersManager()
    manager.init = InitWorkersManager(
        Settings(), QueueSpec("default", 2), "node1", queue_manager=None
    )
    slot = Slot(0, None, Board.create(tmp_path))
    worker = Board(slot.board.path)
    slot.begin(7, [], 0.0)
    slot.standby, slot.first_ref = True, -1
    texts = [Job("Noop", [n], jid=f"j{n}").to_json().encode() for n in range(4)]
    worker.begin_batch(7, MAX_JOBS)
    for index, ok in enumerate([True, False, True]):
        assert worker.hold_text(index, texts[index])
        worker.job_started(7, index, 0.0, 1.0)
        worker.job_ended(7, index, ok)
    worker.keep_texts_from(1)  # job 0's report is out; 1 and 2 went in a later one
    assert worker.hold_text(3, texts[3])
    worker.job_started(7, 3, 0.0, 1.0)
    for ref, text in ((-1, texts[0]), (-3, texts[2])):  # the reports that came
        manager._adopt(slot, ((ref, text),))
        slot.reported.add(ref)
    manager.outcomes.adopted.clear()

    manager._adopt(slot, settle.adopt_from_board(slot))
    settled = settle.settle_dead_batch(slot, "default", Settings(), {})

    assert sorted(ref for ref, _ in manager.outcomes.adopted) == [-4, -2]
    assert settled.acked == []
    failed = dict(settled.failed)
    assert sorted(failed) == [-4, -2]
    assert "died before reporting why" in json.loads(failed[-2].text)["error_message"]
    assert json.loads(failed[-4].text)["error_class"] == "WorkerDiedError"
    worker.close()
    slot.board.close()


def test_a_dead_worker_leaves_the_jobs_taken_back_to_the_others(tmp_path: Path) -> None:
    """A worker dies in a long job after the jobs behind it were taken back: the job
    before it is acked, the one it died in fails, and the jobs taken back are neither
    requeued nor failed (they wait for other workers)."""
    manager, _ = _manager(tmp_path, 2)
    slot = manager.pool.slots[0]
    worker = Board(slot.board.path)
    if not worker.allow_take_back():
        no_membarrier()
    jobs = [(n, Job("Noop", [n]).to_json().encode()) for n in range(5)]
    manager.dispatch.held = list(jobs)
    manager.dispatch.hand_out(slot, 5, 0.0)
    worker.begin_batch(slot.batch, 5)
    assert worker.job_started(slot.batch, 0, 0.0, 1.0)
    worker.job_ended(slot.batch, 0, ok=True)
    assert worker.job_started(slot.batch, 1, 0.0, 1.0)
    taken = settle.take_back(slot, 2)
    assert len(taken) == 3
    manager._taken_back(slot, taken)
    assert [ref for ref, _ in manager.dispatch.held] == [2, 3, 4]
    settled = settle.settle_dead_batch(slot, "default", Settings(), {})
    assert settled.acked == [0]
    assert [ref for ref, _ in settled.failed] == [1]
    assert settled.requeued == []
    worker.close()
    manager.pool.close()


def test_a_probe_that_finds_a_few_jobs_keeps_the_standby(tmp_path: Path) -> None:
    """On standby, a look for a backlog that the queue could not fill (a few jobs came
    since the last look) hands them to another worker and the standby goes on; one
    that got all it asked for is a backlog and ends the standby."""
    manager = WorkersManager()
    sent: list[tuple[Any, Any]] = []
    manager.send = lambda to, message: sent.append((to, message))  # type: ignore[method-assign]
    manager.after = lambda seconds, payload: None  # type: ignore[method-assign]
    manager.init = InitWorkersManager(
        Settings(), QueueSpec("default", 3), "node1", queue_manager="qm"
    )
    for n in range(3):
        manager.pool.add(Slot(n, f"worker{n}", Board.create(tmp_path), state=FREE))
    manager._queue_is_empty()  # the first free worker goes on standby
    standby = manager.standby.slot
    assert standby is not None
    assert [type(m).__name__ for _, m in sent] == ["Standby"]
    sent.clear()
    # The standby's first job makes the manager look for a backlog, but only a real one.
    text = Job("Noop", [0]).to_json().encode()
    manager.receiveMsg_JobsDone(
        JobsDone(standby.batch, (standby.first_ref,), 0.001, (), False, taken=((-1, text),)),
        standby.address,
    )
    [look] = [m for _, m in sent if isinstance(m, RecordOutcomes)]
    assert look.dequeue > 0
    assert look.least == BACKLOG_AT_LEAST > 1
    sent.clear()
    few = tuple((n, Job("Noop", [n]).to_json().encode()) for n in range(3))
    manager.receiveMsg_JobsDequeued(JobsDequeued(few, request=0, remaining=7), None)
    kinds = [(to, type(m).__name__) for to, m in sent]
    assert ("worker0", "EndStandby") not in kinds
    assert ("worker1", "RunJobs") in kinds
    assert manager.standby.slot is standby
    sent.clear()
    more = tuple((n, Job("Noop", [n]).to_json().encode()) for n in range(3, 13))
    manager.receiveMsg_JobsDequeued(JobsDequeued(more, request=0, remaining=0), None)
    assert ("worker0", "EndStandby") in [(to, type(m).__name__) for to, m in sent]
    manager.pool.close()


def _manager(tmp_path: Path, workers: int) -> tuple[WorkersManager, list[tuple[Any, Any]]]:
    """A WorkersManager of ``workers`` free workers, its messages kept, one core's worth
    of jobs measured (CPU-bound, so 2 run at once on CpuGauge(2)), 1 ms each."""
    manager = WorkersManager()
    sent: list[tuple[Any, Any]] = []
    manager.send = lambda to, message: sent.append((to, message))  # type: ignore[method-assign]
    manager.after = lambda seconds, payload: None  # type: ignore[method-assign]
    manager.init = InitWorkersManager(
        Settings(), QueueSpec("default", workers), "node1", queue_manager="qm"
    )
    for n in range(workers):
        manager.pool.add(Slot(n, f"worker{n}", Board.create(tmp_path), state=FREE))
    manager.dispatch.gauge = CpuGauge(2, share=1.0)
    manager.dispatch.sizer.observe(0.001)
    return manager, sent


def test_jobs_go_out_in_batches_to_the_workers_that_may_run(tmp_path: Path) -> None:
    """With fewer jobs held than the pool has free workers, but more than the workers
    that may run at once, each of those gets a batch. They got one job each (counting
    the whole pool as free), so a node fed a batch a message ran near one job a message."""
    manager, sent = _manager(tmp_path, 25)
    jobs = tuple((n, Job("Noop", [n]).to_json().encode()) for n in range(20))
    manager.dispatch.request = 1
    manager.receiveMsg_JobsDequeued(JobsDequeued(jobs, request=1, remaining=0), None)
    batches = [len(m.jobs) for _, m in sent if isinstance(m, RunJobs)]
    assert batches == [10, 10]
    manager.pool.close()


def test_one_request_for_jobs_at_a_time(tmp_path: Path) -> None:
    """A request for jobs goes out only once the last one is answered: jobs of the last
    still on their way would otherwise come on top of the next."""
    manager, sent = _manager(tmp_path, 4)
    manager._run()
    [first] = [m for _, m in sent if isinstance(m, RecordOutcomes)]
    assert first.dequeue > 0
    sent.clear()
    manager.dispatch.gauge.share = 0.1  # jobs that wait: all 4 workers may run, more is wanted
    manager._run()
    assert not [m for _, m in sent if isinstance(m, RecordOutcomes)]
    jobs = tuple((n, Job("Noop", [n]).to_json().encode()) for n in range(10))
    manager.receiveMsg_JobsDequeued(JobsDequeued(jobs, request=first.request, remaining=0), None)
    [second] = [m for _, m in sent if isinstance(m, RecordOutcomes)]
    assert second.request == first.request + 1
    assert second.dequeue > 0
    manager.pool.close()
