"""Optional integrations with other tools, each behind an extra and imported only by
the code that uses it: ``sentry`` (``verk_actors[sentry]``) reports failed tries to
Sentry, ``otel`` (``verk_actors[otel]``) traces enqueues and performs with
OpenTelemetry. They are built on the job hooks and middleware of ``verk_actors.jobs``
and nothing else: no Redis, no actors.
"""
