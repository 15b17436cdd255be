"""``tocsin eval replay``'s printed report: the per-incident table, the noise incidents and
the warnings that matched nothing, the summary with delays as ``h:mm``, and a notice when
the input looks wrong. Tables fit the terminal (80 columns too): ids are never cut, other
cells wrap, and the least important columns go when even that is too wide."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from streams.evaluation.durations import format_hmm

#: above this share of dead-lettered records, ``eval replay`` tells the user to check the file
DEAD_LETTER_NOTICE_SHARE = 0.10

#: a wrapped (non-id) column is kept at least this wide, or as wide as its longest word
WRAP_MIN = 14

#: the summary's keys, in order (the ``*_delay_s`` ones are shown as ``h:mm``)
SUMMARY_KEYS = (
    "incidents", "detected", "recall", "warnings", "false_warnings", "precision",
    "median_delay_s", "mismatched_matches", "noise_incidents", "noise_warned",
    "citywide_conditions", "limit_prewarnings", "events", "dead_letters", "duplicates",
    "seconds")


@dataclass(frozen=True)
class Col:
    """A table column. ``ident``: holds ids, never wrapped nor cut; ``drop``: the columns
    with the highest rank go first when the table is too wide (0: always shown)."""

    header: str
    ident: bool = False
    drop: int = 0
    justify: Literal["left", "right"] = "left"


def _min_width(col: Col, cells: Iterable[Text]) -> int:
    texts = [Text(col.header), *cells]
    if col.ident:
        return max(line.cell_len for t in texts for line in t.split())
    longest = max((len(w) for t in texts for w in t.plain.split()), default=1)
    return min(longest, WRAP_MIN)


def fit_table(title: str | None, cols: Sequence[Col], rows: Sequence[Sequence[str]],
              width: int) -> Table:
    """A table of ``rows`` (rich markup cells, one per column of ``cols``) no wider than
    ``width``: its columns' planned minimum widths (ids whole, other cells wrapped down to
    :data:`WRAP_MIN`) must fit, else the droppable columns go, highest ``drop`` first."""
    cells = [[Text.from_markup(c) for c in row] for row in rows]
    shown = list(range(len(cols)))

    def need() -> int:
        return sum(_min_width(cols[i], (r[i] for r in cells)) for i in shown) + 2 * (
            len(shown) - 1)

    while need() > width and any(cols[i].drop for i in shown):
        shown.remove(max((i for i in shown if cols[i].drop), key=lambda i: cols[i].drop))
    roomy = need() <= width  # else only the ids keep their width, the rest fold
    t = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
              padding=(0, 1), collapse_padding=True, title_justify="left")
    for i in shown:
        c = cols[i]
        t.add_column(c.header, justify=c.justify, no_wrap=c.ident, overflow="fold",
                     min_width=_min_width(c, (r[i] for r in cells))
                     if c.ident or roomy else None)
    for r in cells:
        t.add_row(*(r[i] for i in shown))
    return t


def detected_cell(p: dict[str, Any]) -> str:
    """An incident's delay (``h:mm`` from onset to its first matching warning) or ``NO``;
    a noise incident's ``quiet`` or ``warned``."""
    if not p["cross_department"]:
        return "[red]warned[/]" if p["detected"] else "[green]quiet[/]"
    if not p["detected"]:
        return "[bold red]NO[/]"
    return "[green]yes[/]" if p["delay_s"] is None else f"[green]{format_hmm(p['delay_s'])}[/]"


def match_rows(p: dict[str, Any], extra: Sequence[str] = ()) -> list[list[str]]:
    """An incident's rows: incident, scenario above region, :func:`detected_cell`,
    [extra...], then one row per matching warning: its id above its scenario (``!`` before
    the scenario of a warning counted for the incident that does not fit it:
    :func:`misfit_lines` says why; a noise incident's warnings are all false, unflagged)."""
    head = [p["id"], f"{p['scenario']}\n[dim]{p['region']}[/]", detected_cell(p), *extra]
    ms = p["matches"]
    if not ms:
        return [[*head, ""]]
    blank = [""] * len(head)
    flag = "[bold red]! [/]" if p["cross_department"] else ""
    return [[*(head if k == 0 else blank),
             f"{m['warning_id']}\n{flag if m['misfit'] else ''}{m['scenario']}"]
            for k, m in enumerate(ms)]


def incident_cols(found: str, extra: Sequence[Col] = ()) -> tuple[Col, ...]:
    """The columns of :func:`match_rows`; ``found`` heads the detected column."""
    return (Col("incident", ident=True), Col("scenario\nregion"), Col(found), *extra,
            Col("warning\nits scenario", ident=True))


def misfit_lines(per_incident: Iterable[dict[str, Any]]) -> list[str]:
    """One line per counted match that does not fit its incident."""
    return [f"[bold red]![/] {p['id']} / {m['warning_id']}: {'; '.join(m['misfit'])}"
            for p in per_incident if p["cross_department"]
            for m in p.get("matches", ()) if m["misfit"]]


def unmatched_table(report: dict[str, Any], width: int) -> Table:
    """The warnings that matched no incident, with the noise incident each landed on."""
    landed = {w: p["id"] for p in report["per_incident"] if not p["cross_department"]
              for w in p["warnings"]}
    rows = [[u["warning_id"], u["scenario"], u["region"], u["first_seen"][:16].replace(
        "T", " "), ", ".join(u["departments"]), landed.get(u["warning_id"], "")]
        for u in report.get("unmatched_warnings", ())]
    cols = (Col("warning", ident=True), Col("scenario"), Col("region", drop=2),
            Col("first seen (UTC)"), Col("departments", drop=3),
            Col("on noise", ident=True, drop=1))
    return fit_table("Warnings that matched no incident", cols,
                     rows or [["(none)", "", "", "", "", ""]], width)


def input_notice(report: dict[str, Any], events: Path) -> str | None:
    """One line when the input looks wrong: no records, or more than
    :data:`DEAD_LETTER_NOTICE_SHARE` of them dead-lettered."""
    n, dead = report.get("events", 0), report.get("dead_letters", 0)
    if n == 0:
        return (f"notice: {events} has no records; check the path and that it holds one "
                "JSON object per line, each with a 'source' (tocsin schema shows the format)")
    if dead > DEAD_LETTER_NOTICE_SHARE * n:
        return (f"notice: {dead} of {n} records ({dead / n:.0%}) were dead-lettered; run "
                f"'tocsin validate {events}' to see each rejected line and its reason")
    return None


def summary_lines(report: dict[str, Any], keys: Iterable[str]) -> list[str]:
    """``key value`` lines; a ``*_delay_s`` key is shown without ``_s`` as ``h:mm``."""
    out = []
    for k in keys:
        v = report[k]
        if k.endswith("_delay_s"):
            k, v = k[:-2], "n/a" if v is None else f"{format_hmm(v)} (h:mm)"
        out.append(f"{k:24} {v}")
    return out


def print_replay(report: dict[str, Any], events: Path, as_json: bool, out: Console,
                 err: Console) -> None:
    """``tocsin eval replay``'s output: the notice (stderr), then the JSON object or the
    tables and the summary."""
    notice = input_notice(report, events)
    if notice:
        err.print(notice, style="bold yellow", soft_wrap=True, markup=False, highlight=False)
    if as_json:
        print(json.dumps(report))
        return
    w = out.width
    cross = [p for p in report["per_incident"] if p["cross_department"]]
    noise = [p for p in report["per_incident"] if not p["cross_department"]]
    out.print(fit_table("Incidents: found after (h:mm from onset) or NO, and the "
                        "warnings that matched", incident_cols("found\nafter"),
                        [r for p in cross for r in match_rows(p)], w))
    for line in misfit_lines(cross):
        out.print(line, highlight=False)
    if noise:
        out.print(fit_table("Noise incidents (one department: should not warn)",
                            incident_cols("warned?"), [r for p in noise for r in match_rows(p)], w))
    out.print(unmatched_table(report, w))
    for line in summary_lines(report, SUMMARY_KEYS):
        out.print(line, highlight=False)
