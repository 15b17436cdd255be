"""Sharing grants: which receiving department (the *audience*) may see which warnings, which
of their fields and in how much detail, until when. See ``docs/sharing.md``.

A grant turns every warning version it covers into a *view* (a JSON object with only the
granted fields), sent to ``tocsin.warnings.view.<audience>``; each release is recorded, without
content, on ``tocsin.releases``. Pure functions, no Kafka.

>>> g = Grant(audience="market_regulator", purpose="enforcement", scenarios=["price_gouging"],
...           regions=["all"], detail="summary", fields=["warning_id", "severity"],
...           expires=datetime(2027, 12, 31, tzinfo=UTC))
>>> g.covers("price_gouging", "harbour"), g.covers("flood", "harbour")
(True, False)
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from streams.core.errors import ConfigError
from streams.core.schemas import Warning

#: the field names a grant may list: the top-level fields of :class:`Warning`
WARNING_FIELDS: tuple[str, ...] = tuple(Warning.model_fields)
ALL = "all"
PACKAGED_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "grants.yaml"

Audience = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


def _everything_or_list(v: list[str], what: str) -> list[str]:
    if not v:
        raise ValueError(f"list at least one {what}, or [all]")
    if ALL in v and len(v) > 1:
        raise ValueError(f"[all] covers every {what}: do not list others with it")
    if len(set(v)) != len(v):
        raise ValueError(f"a {what} is listed twice")
    return v


class Grant(BaseModel):
    """One sharing agreement with a receiving department."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    audience: Audience = Field(description="Receiving department, [a-z0-9_]+; names the "
                               "topic tocsin.warnings.view.<audience>.")
    purpose: str = Field(min_length=1, max_length=500,
                         description="Why the audience receives warnings (recorded with "
                         "every release).")
    scenarios: list[str] = Field(description="Scenario names covered, or [all].")
    regions: list[str] = Field(description="Region ids covered, or [all].")
    detail: Literal["full", "summary"]
    fields: list[str] = Field(description="Warning fields released (nothing else is).")
    expires: AwareDatetime = Field(description="After this instant the grant releases nothing.")

    @field_validator("scenarios")
    @classmethod
    def _scenarios(cls, v: list[str]) -> list[str]:
        return _everything_or_list(v, "scenario")

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: list[str]) -> list[str]:
        return _everything_or_list(v, "region")

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one warning field")
        unknown = [f for f in v if f not in WARNING_FIELDS]
        if unknown:
            raise ValueError(f"unknown warning field(s) {', '.join(map(repr, unknown))}; "
                             f"choose from {', '.join(WARNING_FIELDS)}")
        if len(set(v)) != len(v):
            raise ValueError("a field is listed twice")
        return v

    @field_validator("expires")
    @classmethod
    def _expires_utc(cls, v: datetime) -> datetime:
        return v.astimezone(UTC)

    def covers(self, scenario: str, region: str) -> bool:
        return ((ALL in self.scenarios or scenario in self.scenarios)
                and (ALL in self.regions or region in self.regions))

    def expired(self, now: datetime) -> bool:
        """``expires`` is the last instant the grant is in force."""
        return now > self.expires


def _where(i: int, entry: Any) -> str:
    name = entry.get("audience") if isinstance(entry, dict) else None
    return f"grants[{i}]" + (f" (audience {name!r})" if name else "")


def _explain(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "entry"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = (f"unknown key; a grant has {', '.join(Grant.model_fields)}")
        elif e["type"] == "missing":
            msg = "missing; add it"
        elif loc == "expires":
            msg += "; give a date-time with a time zone, e.g. 2027-12-31T23:59:59Z"
        elif loc == "detail":
            msg = "must be full or summary"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse_grants(data: Any, where: str = "<grants>") -> list[Grant]:
    """Grants from parsed YAML; :class:`ConfigError` names the file, the entry and the fix."""
    if not isinstance(data, dict) or not isinstance(data.get("grants"), list):
        raise ConfigError(f"{where}: expected a mapping with a 'grants' list "
                          "(see streams/data/grants.yaml)")
    out: list[Grant] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["grants"]):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: {_where(i, entry)}: expected a mapping of "
                              f"{', '.join(Grant.model_fields)}")
        try:
            g = Grant.model_validate(entry)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {_where(i, entry)}: {_explain(exc)}") from exc
        if g.audience in seen:
            raise ConfigError(f"{where}: {_where(i, entry)}: audience listed twice; merge its "
                              "grants into one entry")
        seen.add(g.audience)
        out.append(g)
    return out


def load_grants(path: str | Path) -> list[Grant]:
    """Read a grants YAML file; :class:`ConfigError` names the file, the entry and the fix."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read grants file {p}: {exc.strerror or exc}; check "
                          "TOCSIN_GRANTS") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    return parse_grants(data, str(p))


def check_grants(grants: list[Grant], scenarios: set[str], regions: set[str],
                 where: str = "<grants>") -> list[Grant]:
    """Refuse grants naming a scenario or region that does not exist (a typo would silently
    release nothing)."""
    for i, g in enumerate(grants):
        bad_s = [s for s in g.scenarios if s != ALL and s not in scenarios]
        bad_r = [r for r in g.regions if r != ALL and r not in regions]
        if bad_s:
            raise ConfigError(f"{where}: grants[{i}] (audience {g.audience!r}): unknown "
                              f"scenario(s) {', '.join(map(repr, bad_s))}; choose from "
                              f"{', '.join(sorted(scenarios))} or [all]")
        if bad_r:
            raise ConfigError(f"{where}: grants[{i}] (audience {g.audience!r}): unknown "
                              f"region(s) {', '.join(map(repr, bad_r))}; use ids from the "
                              "region registry or [all]")
    return grants


def _kind(signal: str) -> str:
    """The signal kind of a signal key (the key without its instance)."""
    return signal.rsplit(":", 1)[0] if signal.count(":") >= 2 else signal


def _summary(field: str, value: Any, w: Warning) -> Any:
    """``summary`` detail: no event ids, no per-signal values, no operator identities."""
    if field == "evidence":
        counts = Counter((e.department, _kind(e.signal)) for e in w.evidence)
        return [{"department": d, "kind": k, "count": n}
                for (d, k), n in sorted(counts.items())]
    if field == "audit" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "event_ids"}
    if field == "history" and isinstance(value, list):
        return [{k: h[k] for k in ("action", "at", "accepted")} for h in value]
    return value


def view(w: Warning, grant: Grant, now: datetime) -> dict[str, Any] | None:
    """What ``grant``'s audience may see of ``w`` at ``now`` (the release time; the worker
    passes its wall clock), or None: the grant has expired, or does not cover the warning's
    scenario or region. Only ``grant.fields`` appear, JSON-ready, in the grant's order."""
    if grant.expired(now) or not grant.covers(w.scenario, w.region):
        return None
    data = w.model_dump(mode="json", include=set(grant.fields))
    if grant.detail == "summary":
        data = {f: _summary(f, v, w) for f, v in data.items()}
    return {f: data[f] for f in grant.fields if f in data}


def _z(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def release_record(w: Warning, grant: Grant, released_at: datetime) -> dict[str, Any]:
    """The audit record of one release (topic ``tocsin.releases``): who received which
    version, which fields, in what detail, when and under which grant; no content."""
    return {
        "audience": grant.audience,
        "purpose": grant.purpose,
        "warning_id": w.warning_id,
        "version": w.version,
        "fields": list(grant.fields),
        "detail": grant.detail,
        "released_at": _z(released_at),
        "grant_expires": _z(grant.expires),
    }


__all__ = ["ALL", "PACKAGED_SAMPLE", "WARNING_FIELDS", "Grant", "check_grants", "load_grants",
           "parse_grants", "release_record", "view"]
