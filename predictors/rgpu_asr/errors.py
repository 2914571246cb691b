"""What the core and the engines raise when a request cannot be served as asked.

They carry no HTTP: the edge (``rgpu_serving.errors``) maps each kind to a status code in one
table. The message is for the caller and says what to do.
"""

from __future__ import annotations


class CoreError(Exception):
    """Base of the errors a caller should see, with a human-readable ``detail``."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class InvalidInput(CoreError):
    """The request asks for something malformed or unsupported (HTTP 400)."""


class UnsupportedAudio(InvalidInput):
    """Not an audio format we take (HTTP 400)."""


class UndecodableAudio(CoreError):
    """The bytes claim to be audio but do not decode (HTTP 422)."""


class TooLarge(CoreError):
    """The input is over a configured limit (HTTP 413)."""


class ModelUnavailable(CoreError):
    """The model cannot be loaded or used; the message names the setting to change (HTTP 503)."""


def check_text(value: str, field: str) -> str:
    """``value`` unchanged, or ``InvalidInput`` when it cannot be encoded as UTF-8: JSON may carry
    lone surrogates (``"\\ud800"``) that tokenizers then fail on."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not valid Unicode text: {exc.reason} at position {exc.start}") from exc
    return value
