"""``python -m verk_actors`` runs the ``verk-actors`` command."""

from verk_actors.cli import main

raise SystemExit(main())
