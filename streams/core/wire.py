"""The building blocks of the wire schemas (:mod:`streams.core.schemas`): constrained
identifiers, event times (time-zone aware, stored in UTC) and the base model, whose
descriptions come from the fields' docstrings and whose examples from
``streams/data/examples.json``."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

EXAMPLES_FILE = Path(__file__).resolve().parents[1] / "data" / "examples.json"

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f]+$")]
Label = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Department = Annotated[str, Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
    description="The sending department's id, e.g. ecology_bureau.")]


def _utc(v: datetime) -> datetime:
    try:
        return v.astimezone(UTC)
    except OverflowError as e:  # e.g. 0001-01-01T00:00+01:00: no UTC equivalent
        raise ValueError(f"time {v.isoformat()} is out of range") from e


#: an ISO 8601 time with its offset (``Z`` or ``+08:00``); a time without one is rejected
EventTime = Annotated[AwareDatetime, AfterValidator(_utc)]


def finite(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


FiniteFloat = Annotated[float, AfterValidator(finite)]


@cache
def examples() -> dict[str, list[dict[str, Any]]]:
    """Model name -> its example messages (read once, on first use)."""
    data: dict[str, list[dict[str, Any]]] = json.loads(EXAMPLES_FILE.read_text("utf-8"))
    return data


def _schema_extra(schema: dict[str, Any], cls: type) -> None:
    found = examples().get(cls.__name__)
    if found:
        schema["examples"] = found


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True,
                              use_attribute_docstrings=True, json_schema_extra=_schema_extra)

    @field_serializer("*", when_used="json", check_fields=False)
    def _ser(self, v: Any) -> Any:
        if isinstance(v, datetime):
            return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return v


__all__ = ["Department", "EventTime", "FiniteFloat", "Identifier", "Label", "WireModel",
           "examples", "finite"]
