"""The rooms of a queue's worker pool, without actors: slots, outcomes, standby, drain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from verk_actors.actors.messages import DrainTimeout
from verk_actors.actors.queue import _settle as settle
from verk_actors.actors.queue._batches import (
    MAX_IN_PROGRESS,
    MAX_REQUEST,
    bounded_batch,
    jobs_wanted,
)
from verk_actors.actors.queue._board import MAX_JOBS, Board
from verk_actors.actors.queue._cpu_gauge import CpuGauge
from verk_actors.actors.queue._dispatch import Dispatch
from verk_actors.actors.queue._drain import Drain
from verk_actors.actors.queue._exits import EXIT_GRACE
from verk_actors.actors.queue._lazy import LazyPool
from verk_actors.actors.queue._outcomes import FLUSH_AFTER, FLUSH_OUTCOMES, Outcomes
from verk_actors.actors.queue._slots import BUSY, FREE, QUIET_AFTER, RETIRING, Pool, Slot
from verk_actors.actors.queue._standby import (
    BACKLOG_AT_LEAST,
    BACKLOG_PROBE_EVERY,
    STANDBY_FLUSH_AFTER,
    StandbyKeeper,
)
from verk_actors.actors.queue.lane_workers_manager import (
    LANE_JOBS_IN_HAND,
    AllLanes,
    LaneDispatch,
)


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[Pool]:
    """Three free slots whose boards live in ``tmp_path``."""
    pool = Pool()
    for n in range(3):
        pool.add(Slot(n, f"worker{n}", Board.create(tmp_path), state=FREE, pid=1000 + n))
    yield pool
    pool.close()


def test_a_slot_is_found_by_an_address_that_compares_equal(pool: Pool) -> None:
    """A sender is matched to its slot by ``==`` once, then by its text; a slot whose
    worker exited is found no more."""
    slot = pool.slots[1]
    assert pool.find("worker1") is slot
    assert pool.find("worker1") is slot
    assert pool.find("nobody") is None
    pool.exited(slot)
    assert pool.find("worker1") is None
    assert len(pool) == 2


def test_workers_that_keep_dying_idle_are_not_replaced(pool: Pool) -> None:
    """A busy worker that died is always replaced; idle ones only within the restart
    intensity (5 in 10 s)."""
    busy = pool.slots[0]
    busy.begin(1, [(1, b"{}")], 0.0)
    pool.exited(busy)
    assert pool.to_replace("q", 100.0) == ([0], 0)
    for n in range(6):
        pool.add(Slot(10 + n, f"idle{n}", pool.slots[0].board, pid=2000 + n))
        pool.exited(pool.slots[-1])
    assert pool.to_replace("q", 100.0) == ([10, 11, 12, 13, 14], 0)
    assert pool.replace == []


def test_a_recycled_worker_is_replaced_without_counting_as_a_restart(pool: Pool) -> None:
    """Workers recycled (retiring when they exit) are always replaced, counted apart
    from restarts, and never use up the idle-death restart intensity."""
    for n in range(8):
        pool.add(Slot(10 + n, f"old{n}", pool.slots[0].board, pid=3000 + n, state=FREE))
        pool.recycle(pool.slots[-1], 0.0)
        pool.exited(pool.slots[-1])  # after its replacement was due: no second one
    assert pool.to_replace("q", 100.0) == ([10 + n for n in range(8)], 8)
    assert pool.restarts == {}
    assert pool.recycles == {10 + n: 1 for n in range(8)}
    pool.add(Slot(20, "idle", pool.slots[0].board, pid=4000))
    pool.exited(pool.slots[-1])
    assert pool.to_replace("q", 100.0) == ([20], 0)  # the intensity is untouched


def test_a_finished_batch_gives_back_the_jobs_not_reported(pool: Pool) -> None:
    """Jobs neither reported nor taken back did not run: they go back; the slot is free."""
    slot = pool.slots[0]
    slot.begin(4, [(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d")], 0.0)
    slot.reported.update({1})
    slot.taken_back.update({3})
    assert pool.busy_and_quiet(0.0) == (0, 1)  # taken back from: counted as quiet
    assert pool.in_hand() == 2
    assert slot.finish() == [2, 4]
    assert slot.state == FREE
    assert slot.finish() == []


def test_a_busy_worker_silent_for_long_counts_as_quiet(pool: Pool) -> None:
    """Busy workers heard from lately count against the active limit, quiet ones not."""
    first, second = pool.slots[0], pool.slots[1]
    first.begin(1, [(1, b"a")], 10.0)
    second.begin(2, [(2, b"b")], 10.0 - QUIET_AFTER)
    assert first.state == second.state == BUSY
    assert pool.busy_and_quiet(10.0) == (1, 1)


def test_outcomes_go_at_once_when_urgent_else_after_a_flush_delay() -> None:
    """Failures, demand, a drain or many outcomes go at once; a few acks wait for one
    flush timer (longer beside a standby), and a message empties the outcomes."""
    outcomes = Outcomes()
    assert outcomes.arm_flush(standby=False) is None  # nothing waits
    outcomes.acked.append(1)
    assert not outcomes.urgent(0, draining=False)
    assert outcomes.urgent(5, draining=False)
    assert outcomes.urgent(0, draining=True)
    assert outcomes.arm_flush(standby=False) == FLUSH_AFTER
    assert outcomes.arm_flush(standby=False) is None  # one timer at a time
    outcomes.flush_armed = False
    assert outcomes.arm_flush(standby=True) == STANDBY_FLUSH_AFTER
    outcomes.acked.extend(range(FLUSH_OUTCOMES))
    assert outcomes.urgent(0, draining=False)
    message = outcomes.message(want=0, request=3, wait=True, standby=False, least=1)
    assert message is not None and len(message.acked) == FLUSH_OUTCOMES + 1
    assert (
        not outcomes
        and outcomes.message(want=0, request=3, wait=True, standby=False, least=1) is None
    )
    outcomes.reconcile = True
    reconcile = outcomes.message(want=0, request=3, wait=True, standby=False, least=1)
    assert reconcile is not None and reconcile.reconcile and not outcomes.reconcile


def test_standby_numbers_its_jobs_apart_and_spots_a_long_job(pool: Pool) -> None:
    """Each standby numbers its jobs from its own range; one job seen running at two
    looks in a row is a long one; jobs taken hint at a backlog at most so often."""
    keeper = StandbyKeeper()
    slot = pool.slots[0]
    first = keeper.begin(slot, 7, 0.0)
    assert (first.batch, first.first_ref) == (7, -1)
    assert keeper.least == BACKLOG_AT_LEAST and keeper.watches(7) and not keeper.watches(8)
    keeper.idle = True
    assert keeper.waits_idle
    keeper.took(BACKLOG_PROBE_EVERY)
    assert not keeper.waits_idle
    keeper.idle = True
    keeper.took(BACKLOG_PROBE_EVERY * 1.5)  # too soon after the last look
    assert keeper.waits_idle
    worker = Board(slot.board.path)
    worker.begin_batch(7, MAX_JOBS)
    assert not keeper.in_long_job()  # nothing runs
    worker.job_started(7, 0, 0.0, 1.0)
    assert not keeper.in_long_job()  # seen once
    assert keeper.in_long_job()  # seen twice: a long job
    ending = keeper.end_message()
    assert ending is not None and ending[0] == "worker0" and ending[1].batch == 7
    keeper.drop()
    assert keeper.slot is None and keeper.least == 1 and keeper.end_message() is None
    worker.close()
    second = keeper.begin(pool.slots[1], 8, 0.0)
    assert second.first_ref == -1 - MAX_JOBS


def test_a_job_past_its_deadline_gets_its_worker_killed_once(pool: Pool) -> None:
    """A worker whose job runs past its deadline is killed (here: a pid that does not
    exist) with the timeout reason, and not again at the next look."""
    slot = pool.slots[0]
    slot.pid = 2**22 + 12345  # above the most pid_max may be (2**22): no such process
    slot.begin(3, [(1, b"a")], 0.0)
    worker = Board(slot.board.path)
    worker.begin_batch(3, 1)
    worker.job_started(3, 0, 5.0, 1.0)
    settle.kill_past_deadline(pool, 4.0, "q")
    assert slot.kill_reason is None
    settle.kill_past_deadline(pool, 6.0, "q")
    assert slot.kill_reason == settle.TIMED_OUT
    worker.close()


def test_a_drain_stops_the_queue_manager_once_and_ignores_old_timeouts() -> None:
    """The timeout of an earlier drain is ignored; the stop goes out once, with the
    jobs the drain gave back."""
    drain = Drain()
    assert not drain.timed_out(DrainTimeout(0))
    first = drain.begin("caller")
    second = drain.begin("caller")
    assert not drain.timed_out(first) and drain.timed_out(second)
    drain.requeued = 4
    stop = drain.stop()
    assert stop is not None and stop.reply_to == "caller" and stop.requeued == 4
    assert drain.stop() is None


def test_the_lazy_pool_stops_idle_workers_above_its_floor(pool: Pool) -> None:
    """Free workers idle for the timeout go (the last slots first) down to the floor, and
    are not replaced when they exit; busy ones are never stopped."""
    lazy = LazyPool(concurrency=5, floor=1, idle_after=10.0)
    pool.slots[0].begin(1, [(1, b"{}")], 0.0)  # busy: never idle
    assert lazy.to_stop(pool, 0.0, "q") == []  # free from now on
    assert lazy.to_stop(pool, 9.0, "q") == []
    stopped = lazy.to_stop(pool, 10.0, "q")
    assert [s.index for s in stopped] == [2, 1]
    assert all(s.state == RETIRING for s in stopped)
    for slot in stopped:
        pool.exited(slot)
    assert pool.replace == []
    assert lazy.to_stop(pool, 100.0, "q") == []  # the busy one is the floor


def test_the_lazy_pool_grows_only_for_held_jobs_no_free_worker_takes(pool: Pool) -> None:
    """Jobs held with no free worker start up to what the CPU gauge lets run (the whole
    pool for jobs that wait), in the slots not in use; a free worker starts none."""
    lazy = LazyPool(concurrency=6, floor=3, idle_after=10.0)
    gauge = CpuGauge(2)
    assert lazy.to_start(pool, 5, lazy.room(pool, gauge, 0.0)) == []  # free workers
    for slot in pool.slots:
        slot.begin(slot.index + 1, [(1, b"{}")], 0.0)  # busy, quiet by now: long jobs
    room = lazy.room(pool, gauge, 10.0)
    assert room == 3
    assert lazy.to_start(pool, 2, room) == [3, 4]
    assert lazy.to_start(pool, 9, room) == [3, 4, 5]
    assert LazyPool(concurrency=3).room(pool, gauge, 10.0) == 0  # not lazy


def test_lanes_take_longer_batches_of_a_backlog_and_one_job_each_of_a_few(pool: Pool) -> None:
    """A lane's batch aims at half a second of work (a process slot's at a tenth), so
    50 ms jobs go ten to a lane from a backlog; with no more jobs than free lanes, each
    lane takes one."""
    jobs = [(n, b"{}") for n in range(100)]
    for dispatch, per_slot in ((LaneDispatch(), 10), (Dispatch(), 2)):
        dispatch.gauge = AllLanes(1)
        dispatch.sizer = dispatch.new_sizer(MAX_JOBS)
        dispatch.sizer.observe_many(20, 20 * 0.05)
        for slot in pool.slots:
            slot.state = FREE
        dispatch.held = list(jobs)
        handed, _ = dispatch.run(pool, 0.0, may_ask=False)
        assert [len(batch) for _, batch in handed] == [per_slot] * 3
        for slot in pool.slots:
            slot.state = FREE
        dispatch.held = jobs[:3]
        handed, _ = dispatch.run(pool, 0.0, may_ask=False)
        assert [len(batch) for _, batch in handed] == [1, 1, 1]


def test_a_lane_queue_holds_more_jobs_in_hand_than_a_process_queue() -> None:
    """At most ``MAX_IN_PROGRESS`` jobs in hand for a queue, unless told more (lanes:
    12 per lane); the request shrinks to fit."""
    assert jobs_wanted(500, 10, 0, in_workers=1500) == MAX_IN_PROGRESS - 1500
    assert jobs_wanted(500, 10, 0, in_workers=1500, most=6000) == MAX_REQUEST
    assert bounded_batch(10, 500) == MAX_IN_PROGRESS // 501
    assert bounded_batch(10, 500, LANE_JOBS_IN_HAND * 500) == 10


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_recycled_worker_that_does_not_stop_its_actor_is_killed(pool: Pool) -> None:
    """A worker asked to exit for a recycle whose actor does not stop (a real process,
    stopped with SIGSTOP) is killed once past RETIRE_GRACE, and not before."""
    process = _sleeper()
    try:
        os.kill(process.pid, signal.SIGSTOP)
        slot = pool.slots[0]
        slot.pid = process.pid
        pool.recycle(slot, 100.0)
        settle.kill_past_deadline(pool, 100.0 + settle.RETIRE_GRACE - 1, "q")
        assert process.poll() is None and slot.kill_reason is None
        settle.kill_past_deadline(pool, 100.0 + settle.RETIRE_GRACE + 1, "q")
        assert process.wait(5) == -signal.SIGKILL
        assert slot.kill_reason == "did not exit when recycled"
    finally:
        process.kill()
        process.wait()


def test_a_process_left_running_after_its_actor_stopped_is_killed(pool: Pool) -> None:
    """Once a recycled worker's actor has stopped, its process is watched: one that ends
    is forgotten, one still there past EXIT_GRACE (real processes) is killed."""
    lingering, ending = _sleeper(), _sleeper()
    try:
        for slot, process in zip(pool.slots[:2], (lingering, ending), strict=True):
            slot.pid = process.pid
            pool.recycle(slot, 0.0)
        now = time.monotonic()
        for slot in list(pool.slots[:2]):
            pool.exited(slot)  # Thespian's goodbye: the actor stopped, the process runs on
        assert set(pool.leaving.watched) == {lingering.pid, ending.pid}
        ending.terminate()
        ending.wait(5)
        settle.kill_past_deadline(pool, now + EXIT_GRACE - 1, "q")
        assert set(pool.leaving.watched) == {lingering.pid}
        assert lingering.poll() is None
        settle.kill_past_deadline(pool, now + EXIT_GRACE + 1, "q")
        assert lingering.wait(5) == -signal.SIGKILL
        assert not pool.leaving.watched
    finally:
        for process in (lingering, ending):
            process.kill()
            process.wait()
