"""The ``TOCSIN_*`` environment variables: which exist (the settings' fields and the few
read elsewhere, listed here), a warning for a misspelt one, and the one-line message of a
setting that does not validate, naming the variable (or the option) that holds it."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr, ValidationError

from streams.core.settings import TocsinSettings

PREFIX = "TOCSIN_"
#: variables Tocsin reads outside TocsinSettings (tests/streams/test_cli_failures.py checks
#: that every ``TOCSIN_`` name in the code is a setting or listed here)
OTHER_VARIABLES = ("TOCSIN_BENCH_DEBUG",)
#: what Kubernetes (and docker --link) define for a Service named ``tocsin-...``: not settings
SERVICE_LINK = re.compile(
    r"^TOCSIN_\w+?_(SERVICE_HOST|SERVICE_PORT\w*|PORT_\d+_(TCP|UDP|SCTP)\w*)$")
#: ``<SERVICE>_PORT=tcp://10.0.0.5:9464`` is a link only by its value (a misspelt setting
#: ending in ``_PORT``, with a plain number, still gets its warning)
LINK_VALUE = re.compile(r"^(tcp|udp|sctp)://")


def _service_link(name: str, value: str) -> bool:
    return bool(SERVICE_LINK.match(name)
                or (name.endswith("_PORT") and LINK_VALUE.match(value)))


def variable(field: str) -> str:
    """``partitions`` -> ``TOCSIN_PARTITIONS``."""
    return PREFIX + field.upper()


def known_variables() -> set[str]:
    return {variable(f) for f in TocsinSettings.model_fields} | set(OTHER_VARIABLES)


def unknown_variable_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning per ``TOCSIN_`` variable that nothing reads, with the nearest known
    name when there is one."""
    env = os.environ if environ is None else environ
    known = known_variables()
    out = []
    suffixes = [k.removeprefix(PREFIX) for k in known]  # the shared prefix would match all
    for name in sorted(n for n in env if n.startswith(PREFIX) and n not in known
                       and not _service_link(n, env[n])):
        near = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.75)
        hint = f"did you mean {PREFIX}{near[0]}?" if near else "see docs/settings.md"
        out.append(f"warning: {name} is not a Tocsin setting; {hint}")
    return out


def _is_secret(field: str) -> bool:
    info = TocsinSettings.model_fields.get(field)
    return info is not None and SecretStr in getattr(info.annotation, "__args__",
                                                     (info.annotation,))


def settings_message(exc: ValidationError, options: Iterable[str] = ()) -> str:
    """``TOCSIN_PARTITIONS='abc': Input should be a valid integer; fix or unset it``: each
    error names its variable (or ``--option``, for the fields in ``options``) and the value
    given (never a secret's)."""
    given = set(options)
    parts = []
    for e in exc.errors(include_url=False):
        loc = e["loc"]
        msg = str(e["msg"]).removeprefix("Value error, ")
        if not loc:  # a check across settings: its message names the variables
            parts.append(msg)
            continue
        field = str(loc[0])
        name = f"--{field.replace('_', '-')}" if field in given else variable(field)
        value: Any = e.get("input")
        shown = "" if _is_secret(field) or isinstance(value, dict) else f"={value!r}"
        parts.append(f"{name}{shown}: {msg}")
    what = "fix it" if given else "fix or unset it"
    return "; ".join(parts) + f"; {what}"
