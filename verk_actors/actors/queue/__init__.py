"""One queue's subtree: its supervisor, the QueueManager (Redis side) and the worker pool.

``queue_supervisor.py`` starts ``queue_manager.py`` then ``workers_manager.py``, which
starts the ``worker_actor.py`` processes. The private modules are the pool's rooms,
plain classes and functions the two pool actors own:

- ``_slots``: the worker slots and their states; ``_dispatch``: held jobs, batches
  handed out, the request for more; ``_batches``: batch arithmetic; ``_cpu_gauge``:
  how many workers run at once; ``_outcomes``: what the QueueManager has not heard;
- ``_board``: the progress board a worker and its manager share; ``_settle``: what a
  board says (a job past its time limit, jobs taken back from behind a long job, a
  dead worker's batch);
- ``_standby`` and ``_standby_worker``: the manager's and the worker's sides of the
  standby path (on an idle queue one worker waits on the queue itself);
- ``_report``: what a worker has not reported yet; ``_drain``: a graceful stop;
  ``_event_demand``: which events someone wants.
"""
