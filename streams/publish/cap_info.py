"""The ``info`` block of a Tocsin CAP alert: response and urgency by status, categories,
headline, the area (region name, circle, geocode) and the aggregated evidence as
parameters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cap_tools.models import (
    Area,
    Category,
    Certainty,
    Geocode,
    Info,
    Parameter,
    ResponseType,
    Severity,
    Urgency,
    Value,
    ValueName,
)

from streams.core.errors import RegistryError
from streams.core.regions import RegionRegistry
from streams.core.schemas import Warning
from streams.publish.cap_scenarios import (
    CapCategory,
    cap_categories,
    cap_event,
    default_instruction,
)
from streams.publish.cap_values import CapError, cap_datetime, cap_time_text, xml_text

HEADLINE_MAX = 160
REGION_GEOCODE = "tocsin-region"


def headline(warning: Warning, area_name: str) -> str:
    """At most ``HEADLINE_MAX`` characters (CAP recommends 160 for text-messaging)."""
    suffix = {
        "new": "",
        "update": f" (version {warning.version})",
        "resolved": " - resolved",
        "cancelled": " - withdrawn",
    }[warning.status]
    text = f"{warning.severity}: {cap_event(warning.scenario)} in {xml_text(area_name)}{suffix}"
    return text if len(text) <= HEADLINE_MAX else text[: HEADLINE_MAX - 1].rstrip() + "…"


def build_info(
    warning: Warning,
    registry: RegionRegistry,
    sent: datetime,
    *,
    instruction: str | None,
    category: CapCategory | Sequence[CapCategory] | None,
    sender_name: str,
    language: str,
    radius_km: float,
    expires_after: timedelta | None,
    web: str | None,
) -> Info:
    """The one ``info`` of a warning version sent at ``sent`` (options as ``build_alert``)."""
    area, area_name = build_area(warning, registry, radius_km)
    response, urgency = _response_and_urgency(warning)
    cats = _categories(warning, category)
    return Info(
        language=language,
        categories=cats,
        event=cap_event(warning.scenario),
        response_types=[response],
        urgency=urgency,
        severity=Severity(warning.severity),
        certainty=Certainty(warning.certainty),
        effective=cap_datetime(sent),
        onset=cap_datetime(warning.first_seen),
        expires=None if expires_after is None else cap_datetime(sent + expires_after),
        sender_name=xml_text(sender_name) or None,
        headline=headline(warning, area_name),
        description=xml_text(warning.explanation) or None,
        instruction=xml_text(instruction if instruction is not None else
                             default_instruction(warning)) or None,
        web=web,
        parameters=[Parameter(ValueName(k), Value(xml_text(v)))
                    for k, v in _parameters(warning)],
        areas=[area],
    )


def build_area(warning: Warning, registry: RegionRegistry, radius_km: float
               ) -> tuple[Area, str]:
    """The warning's area and the region's name: a circle around the registry centroid and
    the ``tocsin-region`` geocode; a region missing from the registry keeps the geocode and
    is named by its id, without a circle."""
    try:
        region = registry.get(warning.region)
    except RegistryError:
        area_name, circles = warning.region, []
    else:
        area_name = region.name
        circles = [f"{region.lat:.5f},{region.lon:.5f} {radius_km:g}"]
    area = Area(
        area_desc=xml_text(area_name) or warning.region,
        circles=circles,
        geocodes=[Geocode(ValueName(REGION_GEOCODE), Value(xml_text(warning.region)))],
    )
    return area, area_name


def _response_and_urgency(warning: Warning) -> tuple[ResponseType, Urgency]:
    if warning.status == "resolved":
        return ResponseType.ALL_CLEAR, Urgency.PAST
    if warning.status == "cancelled":
        return ResponseType.NONE, Urgency.PAST
    return ResponseType.ASSESS, Urgency(warning.urgency)


def _categories(warning: Warning, category: CapCategory | Sequence[CapCategory] | None
                ) -> list[Category]:
    """The scenario's categories, or those given, once each in order."""
    if category is None:
        categories: Sequence[str] = cap_categories(warning.scenario)
    elif isinstance(category, str):
        categories = [category]
    else:
        categories = list(category)
    if not categories:
        raise CapError("a CAP info needs at least one category")
    try:
        return [Category(c) for c in dict.fromkeys(categories)]
    except ValueError as e:
        raise CapError(f"{e}; CAP categories are {', '.join(c.value for c in Category)}") from e


def _parameters(warning: Warning) -> list[tuple[str, str]]:
    params = [
        ("warning_id", warning.warning_id),
        ("version", str(warning.version)),
        ("tocsin_status", warning.status),
        ("scenario", warning.scenario),
        ("score", f"{warning.score:.3f}"),
        ("departments", ",".join(warning.departments)),
        ("first_seen", cap_time_text(warning.first_seen)),
        ("last_seen", cap_time_text(warning.last_seen)),
        ("evidence_count", str(len(warning.evidence))),
    ]
    for e in warning.evidence:
        params.append((
            "evidence",
            f"{e.signal} ({e.department}) observed {e.observed:.4g} vs expected "
            f"{e.expected:.4g}, p={e.p_value:.1e}, at {cap_time_text(e.event_time)}",
        ))
    return params
