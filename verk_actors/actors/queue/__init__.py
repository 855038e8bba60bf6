"""One queue's subtree: its supervisor, the QueueManager (Redis side) and the worker pool.

``queue_supervisor.py`` starts ``queue_manager.py`` then ``workers_manager.py``, which
starts the ``worker_actor.py`` processes. The private modules are the pool's parts:
worker slots and their states, the standby path, settling a dead worker's batch, batch
sizes, the CPU gauge, and the progress board the workers and their manager share.
"""
