"""What every ``tocsin`` command shares: the ``--broker`` option, the global ``--debug``
and ``--version`` options, and the one way a command fails: one line on stderr,
``error: <what is wrong>; <what to do>``, and a documented exit status (README,
Commands): 2 a bad option, setting or input file, 69 the broker (or a service) unavailable,
70 an internal error. ``--debug`` adds the traceback."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from streams.core.connect import DEFAULT_BROKER
from streams.core.errors import EXIT_SOFTWARE, EXIT_UNAVAILABLE, EXIT_USAGE, TocsinError

if TYPE_CHECKING:
    from streams.core.settings import TocsinSettings

#: the ``--broker`` option of every command that connects to Kafka
BrokerOption = Annotated[str | None, typer.Option(
    help=f"Kafka bootstrap servers, host:port[,...] (default: TOCSIN_BROKER, else "
    f"{DEFAULT_BROKER}).", show_default=False)]

#: the command-line parser's usage errors (typer's BadParameter and its bases; recent typer
#: vendors click, so its classes are not the ``click`` package's)
ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
#: what a command raises to end with a status of its own (``--help`` too)
PASS_THROUGH = (ClickException, typer.Exit, typer.Abort)

#: a domain error that is not a TocsinError -> the setting that names its file
FILE_SETTINGS = {"TemplateError": "TOCSIN_SCENARIOS", "CatalogueError": "TOCSIN_SIGNALS",
                 "CalendarError": "TOCSIN_HOLIDAYS"}


def settings_with(**overrides: object) -> TocsinSettings:
    """The settings, with these command-line options over the environment; an invalid
    one names its variable or option (``--broker``)."""
    from pydantic import ValidationError

    from streams.core.environment import settings_message
    from streams.core.errors import ConfigError
    from streams.core.settings import load_settings

    try:
        return load_settings(**overrides)
    except ValidationError as e:
        raise ConfigError(settings_message(
            e, [k for k, v in overrides.items() if v is not None])) from e


def readable(path: Path, what: str) -> Path:
    """``path``, if it can be read (before connecting to anything)."""
    from streams.core.errors import InputFileError

    try:
        path.open("rb").close()
    except OSError as e:
        raise InputFileError(f"cannot read {what} {path}: {e.strerror or e}; check the "
                             "path") from e
    return path


def writable(path: Path | None, what: str) -> None:
    """Check, before any work is done, that ``path`` (if given) can be written: its folder
    is made if missing; a folder in its place or no write permission is one error line."""
    if path is None:
        return
    import os

    from streams.core.errors import InputFileError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputFileError(f"cannot write {what} {path}: {e.strerror or e}; check the "
                             "path") from e
    if path.is_dir() or not os.access(path if path.exists() else path.parent, os.W_OK):
        raise InputFileError(f"cannot write {what} {path}: "
                             f"{'a folder' if path.is_dir() else 'permission denied'}; "
                             "give another path")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"tocsin {version('tocsin')}")
        except PackageNotFoundError:
            typer.echo("tocsin (not installed: no version; pip install -e .)")
        raise typer.Exit()


def options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option(
        "--debug", help="On failure, print the traceback too (and log at debug level).")
                     ] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
                       ] = False,
) -> None:
    """Tocsin: cross-department early warning on Kafka."""
    ctx.ensure_object(dict)["debug"] = debug
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


def say(line: str) -> None:
    """One line on stderr, never hard-wrapped (a log keeps it whole)."""
    print(" ".join(line.split()), file=sys.stderr, flush=True)


def failure(exc: BaseException) -> tuple[str, int]:
    """The one line and exit status of a failed command."""
    from pydantic import ValidationError

    from streams.core.errors import validation_message

    if isinstance(exc, ClickException):
        ctx = getattr(exc, "ctx", None)
        where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        text = exc.format_message().rstrip(".")  # type: ignore[attr-defined]
        return f"error: {text}{where}", EXIT_USAGE
    if isinstance(exc, TocsinError):
        return f"error: {exc}", exc.exit_code
    if isinstance(exc, ValidationError):
        if exc.title == "TocsinSettings":
            from streams.core.environment import settings_message

            return f"error: {settings_message(exc)}", EXIT_USAGE
        return f"error: {validation_message(exc)}; check the input", EXIT_USAGE
    name = type(exc).__name__
    if name in FILE_SETTINGS:
        return f"error: {exc}; fix {FILE_SETTINGS[name]} or unset it", EXIT_USAGE
    if isinstance(exc, OSError) and exc.filename is not None:
        return (f"error: {exc.filename}: {exc.strerror or exc}; check the path and its "
                "permissions", EXIT_USAGE)
    if type(exc).__module__.split(".")[0] in ("aiokafka", "kafka"):
        return (f"error: the Kafka broker failed: {name}: {exc}; check that it is up and "
                "that --broker or TOCSIN_BROKER names it", EXIT_UNAVAILABLE)
    return (f"internal error: {name}: {exc}; rerun with --debug and report it",
            EXIT_SOFTWARE)


class LogLine(logging.Formatter):
    """A log record as one line: ``connecting to ...`` (info) as it is, ``warning: ...``
    and ``error: ...`` above, like the command's own messages."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


class TocsinGroup(TyperGroup):
    """The ``tocsin`` group: a command that fails prints its one line and exits with its
    status (under ``typer.testing.CliRunner`` too)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PASS_THROUGH:
            raise
        except Exception as e:
            line, code = failure(e)
            if (ctx.obj or {}).get("debug"):
                traceback.print_exc()
            say(line)
            raise typer.Exit(code) from e


def run(app: typer.Typer) -> NoReturn:
    """Run ``app`` (the ``tocsin`` command) and exit with its status; usage errors too end
    in one line."""
    from streams.core.environment import unknown_variable_warnings

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogLine())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("tocsin.broker").setLevel(logging.INFO)  # where it connects
    for w in unknown_variable_warnings():
        say(w)
    try:
        rv = app(prog_name="tocsin", standalone_mode=False)
    except typer.Abort:
        say("aborted")
        sys.exit(1)
    except Exception as e:  # outside a command (TocsinGroup handles those)
        if type(e).__name__ == "NoArgsIsHelpError":  # a group without its command: help
            e.show()  # type: ignore[attr-defined]
            sys.exit(EXIT_USAGE)
        line, code = failure(e)
        say(line)
        sys.exit(code)
    sys.exit(rv if isinstance(rv, int) else 0)
