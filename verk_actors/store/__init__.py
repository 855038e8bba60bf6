"""Everything that speaks Redis: key names, Lua scripts, connections, the per-area stores
the actors use, enqueueing (``client.py``) and the operators' API (``admin/``).

No module outside this package names a Redis key or sends a Redis command.
"""
