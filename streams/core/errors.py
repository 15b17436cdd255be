"""One exception hierarchy. Every message says what the operator should do next."""

from __future__ import annotations

#: exit statuses of every command and of the worker (sysexits.h), documented in the README
EXIT_REJECTED = 1  # tocsin validate: the file was read, and some of its lines were rejected
EXIT_USAGE = 2  # a bad option, setting or input file
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the broker, or the checkpoints, cannot be reached
EXIT_SOFTWARE = 70  # EX_SOFTWARE: an internal error (a batch failed half-way)


class TocsinError(Exception):
    """Base class of every error Tocsin raises on purpose; ``tocsin`` exits with its
    ``exit_code``."""

    exit_code: int = EXIT_USAGE


class ConfigError(TocsinError):
    """A setting, a registry file or a command-line option is wrong."""


class RegistryError(ConfigError):
    """The region registry cannot be read or is inconsistent."""


class BrokerError(TocsinError):
    """The Kafka broker cannot be reached or refused a request."""

    exit_code = EXIT_UNAVAILABLE


class BrokerStartError(BrokerError):
    """The embedded broker could not be started."""


class BrokerUnavailableError(BrokerError):
    """The broker has been unreachable for longer than the configured limit."""


class ValidationFailure(TocsinError):
    """A record failed validation; ``reason`` is stored with it in the dead-letter topic."""

    def __init__(self, reason: str, error_type: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


class InputFileError(TocsinError):
    """A JSONL or JSON input file is unreadable or malformed."""


def validation_message(exc: Exception, limit: int = 5) -> str:
    """The one wording of a failed validation: ``field: what is wrong`` for each of the first
    ``limit`` errors of a pydantic ``ValidationError`` (``; ``-separated, with a count of
    the rest); any other exception's own message."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    found = errors()
    parts = [f"{'.'.join(str(x) for x in e['loc']) or 'record'}: "
             f"{str(e['msg']).removeprefix('Value error, ')}" for e in found[:limit]]
    more = f" (+{len(found) - limit} more)" if len(found) > limit else ""
    return "; ".join(parts) + more
