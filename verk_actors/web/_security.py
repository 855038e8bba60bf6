"""Who may see the dashboard, and what keeps a page from being turned against its user.

- ``Auth``: a bearer token (also accepted as the password of HTTP basic, so a browser
  can log in with its own prompt) or a user and password for HTTP basic.
- CSRF: each browser gets a random token, signed with the app's secret, in an HttpOnly
  ``SameSite=Strict`` cookie; every form carries it, and every POST must send the same
  token back (form field ``csrf`` or header ``X-CSRF-Token``), else it is refused (403).
- Headers on every answer: a Content-Security-Policy allowing only the app's own
  scripts and styles (none inline), no framing, no MIME sniffing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie
from typing import Any

import attrs
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verk_actors.errors import ConfigurationError

CSRF_COOKIE = "verk_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


@attrs.frozen
class Auth:
    """Credentials the dashboard asks for: a token, or a user and a password."""

    token: str | None = attrs.field(default=None, repr=False)
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.token is not None and not self.token:
            raise ConfigurationError("the web token is empty; give a long random string")
        if (self.user is None) != (self.password is None) or self.user == "":
            raise ConfigurationError(
                "HTTP basic needs both a user and a password (--basic USER:PASS, or "
                "VERK_WEB_USER and VERK_WEB_PASSWORD)"
            )
        if self.token is None and self.user is None:
            raise ConfigurationError("Auth needs a token or a user and a password")

    @classmethod
    def basic(cls, pair: str) -> Auth:
        """``USER:PASS`` as given to ``--basic``."""
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            raise ConfigurationError(f"--basic takes USER:PASS, got {user or '?'}:...")
        return cls(user=user, password=password)

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries these credentials."""
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.token is not None:
            return _same(value.strip(), self.token)
        if scheme != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        if self.token is not None and _same(password, self.token):
            return True
        return (
            self.user is not None
            and self.password is not None
            and _same(user, self.user) & _same(password, self.password)
        )


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Csrf:
    """Makes and checks the signed per-browser tokens."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, nonce: str) -> str:
        mac = hmac.new(self._secret, nonce.encode("ascii"), hashlib.sha256).hexdigest()
        return f"{nonce}.{mac[:32]}"

    def new(self) -> str:
        """A fresh token."""
        return self._sign(secrets.token_urlsafe(24))

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` was made by this app."""
        if not token or token.count(".") != 1 or not token.isascii():
            return False
        return hmac.compare_digest(self._sign(token.split(".", 1)[0]), token)

    def matches(self, cookie: str | None, sent: str | None) -> bool:
        """Whether a POST's token is this browser's valid one."""
        return self.valid(cookie) and sent is not None and _same(sent, cookie or "")


def cookie_value(headers: Headers, name: str) -> str | None:
    """The value of cookie ``name`` in a request's headers."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # http.cookies raises CookieError on garbage
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


class Guard:
    """ASGI middleware: authentication, the CSRF cookie, security headers."""

    def __init__(self, app: ASGIApp, *, auth: Auth | None, csrf: Csrf) -> None:
        self.app = app
        self.auth = auth
        self.csrf = csrf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.auth is not None and not self.auth.allows(headers.get("authorization")):
            response = PlainTextResponse(
                "authentication required",
                status_code=401,
                headers={"www-authenticate": 'Basic realm="verk_actors", charset="UTF-8"'},
            )
            await response(scope, receive, self._headers(send, None, scope))
            return
        token = cookie_value(headers, CSRF_COOKIE)
        fresh = None
        if not self.csrf.valid(token):
            fresh = token = self.csrf.new()
        scope.setdefault("state", {})["csrf"] = token
        scope["state"]["csrf_cookie"] = None if fresh else token
        await self.app(scope, receive, self._headers(send, fresh, scope))

    def _headers(self, send: Send, fresh: str | None, scope: Scope) -> Send:
        path = (scope.get("root_path") or "") + "/"

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    out[name] = value
                if "cache-control" not in out:
                    out["cache-control"] = "no-store"
                if fresh is not None:
                    out.append(
                        "set-cookie",
                        f"{CSRF_COOKIE}={fresh}; Path={path}; HttpOnly; SameSite=Strict",
                    )
            await send(message)

        return sending


def form_token(form: dict[str, list[str]], headers: Any) -> str | None:
    """The CSRF token a POST sent: the form field, else the header."""
    values = form.get(CSRF_FIELD)
    if values:
        return values[0]
    value: str | None = headers.get(CSRF_HEADER)
    return value
