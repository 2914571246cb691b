"""Structured (JSON) logging for every process; keys never reach a log line."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

#: Credentials a library may print while debugging a connection (uvicorn's WebSocket layer logs
#: every request header at DEBUG): the bearer token and the key a browser sends as a subprotocol.
_SECRETS = re.compile(r"(?i)(authorization:\s*bearer\s+|bearer\s+|openai-insecure-api-key\.)[^\s,'\"]+")


class RedactSecrets(logging.Filter):
    """Replaces API keys in any record's message before it is formatted: keys never reach a log
    line, whatever library wrote it and at whatever level."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRETS.sub(r"\1<redacted>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # KServe and uvicorn install their own handlers; route everything through ours.
    for name in ("kserve", "kserve.trace", "uvicorn", "uvicorn.error", "uvicorn.access", "faster_whisper"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
