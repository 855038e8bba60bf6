"""The web dashboard and its JSON API (``pip install 'verk_actors[web]'``).

::

    from verk_actors.web import Auth, create_app

    app = create_app("redis://localhost:6379/0", auth=Auth(token="..."))

``verk-actors web`` serves it with uvicorn; ``create_app`` returns an ASGI app to
mount in another (Starlette's ``Mount("/verk", app=...)``, FastAPI's ``app.mount``).
"""

from __future__ import annotations

from verk_actors.web._security import Auth
from verk_actors.web.app import create_app

__all__ = ["Auth", "create_app"]
