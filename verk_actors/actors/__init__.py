"""The supervision tree: every actor of a node, its messages, and starting it.

``VerkRoot`` (root.py) supervises the NodeManager, EventManager and ScheduleManager and
one queue subtree per queue (``queue/``: QueueSupervisor, QueueManager, WorkersManager
and its WorkerActors). ``system.py`` starts the Thespian system a node runs in;
``_thespian.py`` is the only module that changes Thespian's internals. Actors never
speak Redis themselves: they call ``verk_actors.store``.
"""
