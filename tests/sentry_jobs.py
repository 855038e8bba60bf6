"""Turns Sentry reporting on in a node (imported by it as ``tests.sentry_jobs``): the
DSN is the test's local HTTP server, from ``TEST_SENTRY_DSN``. ``SentryNote`` sends a
message to Sentry from inside ``perform``."""

from __future__ import annotations

import os

import sentry_sdk

import verk_actors.integrations.sentry
from verk_actors import Worker

verk_actors.integrations.sentry.enable(dsn=os.environ["TEST_SENTRY_DSN"])


class SentryNote(Worker):
    """Sends the message ``note`` to Sentry from inside perform."""

    def perform(self, note: str) -> None:
        sentry_sdk.capture_message(note)
