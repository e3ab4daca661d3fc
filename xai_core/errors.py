"""Typed errors with messages meant for the person at the keyboard.

Every error raised on purpose by ``xai_core`` derives from :class:`XaiError`. Its
message says *what* is wrong and *what to do*; the CLI prints it on one line and the
dashboard shows it in the page, so no stack trace ever reaches a user.
"""

from __future__ import annotations


class XaiError(Exception):
    """Base class of all expected, user-facing errors."""

    #: Short category shown before the message (CLI and UI).
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{_sentence(message)} {hint}")

    def user_message(self) -> str:
        """One line: the problem and, when known, what to do about it."""
        return str(self)


class VideoError(XaiError):
    """A video cannot be read, or is outside the configured limits."""

    kind = "video"


class CheckpointError(XaiError):
    """A model checkpoint or class-names file cannot be used."""

    kind = "checkpoint"


class ParameterError(XaiError, ValueError):
    """A parameter is out of range or unknown (frame start, stride, sigma, target...)."""

    kind = "parameter"


class MethodError(XaiError):
    """An attribution method cannot be applied to this model, or produced bad numbers."""

    kind = "method"


class CacheError(XaiError):
    """The result cache cannot be used (the engine falls back to memory)."""

    kind = "cache"


def _sentence(text: str) -> str:
    """``text`` ending as a sentence, so that a hint after it reads as the next one."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else f"{text}."
