"""Turns Sentry reporting on in a node (imported by it as ``tests.sentry_jobs``): the
DSN is the test's local HTTP server, from ``TEST_SENTRY_DSN``."""

from __future__ import annotations

import os

import verk_actors.integrations.sentry

verk_actors.integrations.sentry.enable(dsn=os.environ["TEST_SENTRY_DSN"])
