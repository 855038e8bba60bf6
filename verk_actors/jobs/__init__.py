"""Jobs without infrastructure: the job value, ``Worker``, the registry, running one job,
and what happens to a job that fails. Imports neither ``redis`` nor ``thespian``."""
