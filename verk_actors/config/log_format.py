"""The two formats of a node's log: text for people, JSON lines for log shippers.

Both show the job a record was logged in (``jid``, ``job_class``, ``job_queue``, see
``verk_actors.jobs.job_log``) and a job line's ``duration`` and ``outcome``. Thespian's
logger process builds them from ``log_defs`` (``"()"`` names the class), the launcher
uses them directly.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from verk_actors.errors import ConfigurationError

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")

JOB_FIELDS = (("jid", "jid"), ("job_class", "class"), ("job_queue", "queue"))
"""Record attribute, and the name it is shown under."""
LINE_FIELDS = ("duration", "outcome")


def check_log_format(value: object) -> str:
    """``value`` if it names a format, else ConfigurationError."""
    if value not in FORMATS:
        raise ConfigurationError(f"log_format must be one of {', '.join(FORMATS)}, got {value!r}")
    return str(value)


class TextFormatter(logging.Formatter):
    """The plain format, followed by ``jid=... class=... queue=...`` in a job."""

    def __init__(self, fmt: str = TEXT_FORMAT, **kwargs: Any) -> None:
        super().__init__(fmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        jid = getattr(record, "jid", None)
        if jid is None and getattr(record, "job_class", None) is None:
            return text
        tail = " ".join(f"{shown}={getattr(record, attr, None)}" for attr, shown in JOB_FIELDS)
        head, newline, rest = text.partition("\n")  # after the message, before a traceback
        return f"{head} [{tail}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, pid, and
    jid, class, queue, duration, outcome when the record has them; exc_info as text."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for attr, shown in JOB_FIELDS:
            value = getattr(record, attr, None)
            if value is not None:
                data[shown] = value
        for attr in LINE_FIELDS:
            value = getattr(record, attr, None)
            if value is not None:
                data[attr] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str)


def formatter_config(log_format: str) -> dict[str, Any]:
    """The ``dictConfig`` entry of the formatter of ``log_format``."""
    if check_log_format(log_format) == "json":
        return {"()": f"{__name__}.JsonFormatter"}
    return {"()": f"{__name__}.TextFormatter"}


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format``."""
    return JsonFormatter() if check_log_format(log_format) == "json" else TextFormatter()
