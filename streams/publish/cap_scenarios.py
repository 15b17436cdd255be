"""What CAP says of each Tocsin scenario: its categories, event name and instruction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from streams.core.schemas import Warning
from streams.publish.cap_values import xml_text

CapCategory = Literal[
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
]

#: scenario -> CAP categories (CAP 1.2 3.2.2: "Met" includes flood; there is no economic
#: category, so price gouging is "Other").
SCENARIO_CATEGORIES: Mapping[str, tuple[CapCategory, ...]] = {
    "pollution": ("Env",),
    "chemical_leak": ("Env",),
    "food_safety": ("Health",),
    "product_quality": ("Safety",),
    "price_gouging": ("Other",),
    "flood": ("Met",),
    "waterlogging": ("Met",),
    "cross_department": ("Other",),
    "entity_risk": ("Safety",),
    "limit_forecast": ("Env",),
}

SCENARIO_EVENTS: Mapping[str, str] = {
    "pollution": "Environmental pollution",
    "chemical_leak": "Chemical leak",
    "food_safety": "Food safety incident",
    "product_quality": "Unsafe product",
    "price_gouging": "Price gouging",
    "flood": "Flooding",
    "waterlogging": "Waterlogging",
    "cross_department": "Cross-department anomaly",
    "entity_risk": "High-risk market entity",
    "limit_forecast": "Regulatory limit exceedance forecast",
}

SCENARIO_INSTRUCTIONS: Mapping[str, str] = {
    "pollution": (
        "Verify the listed sensor readings and complaints on site, locate and stop the source; "
        "if confirmed, advise residents to avoid contact with affected water and to limit "
        "outdoor activity where air quality is affected."
    ),
    "chemical_leak": (
        "Send an inspection team to locate the leak and check nearby facilities; if confirmed, "
        "keep people away from the area and advise them to close windows."
    ),
    "food_safety": (
        "Inspect the implicated food businesses, take samples and trace the products; if "
        "confirmed, order the products withdrawn and inform local health services."
    ),
    "product_quality": (
        "Check the implicated products and recalls, trace distribution and consider a "
        "withdrawal from sale."
    ),
    "price_gouging": (
        "Check prices at the market stalls and shops reporting the increase and review "
        "complaints; act against unjustified price increases under the price law."
    ),
    "entity_risk": (
        "Market regulator: review the entity's recent recalls, licence violations, failed "
        "inspections and complaints, and schedule a targeted inspection of its premises and "
        "products."
    ),
    "flood": (
        "Check drainage and water levels on site, prepare pumps and barriers, and warn "
        "residents of low-lying streets if levels keep rising."
    ),
    "waterlogging": (
        "Check drainage and water levels on site, prepare pumps and barriers, and warn "
        "residents of low-lying streets if levels keep rising."
    ),
    "limit_forecast": (
        "The station's readings are forecast to cross the regulatory limit named below: "
        "check the station and likely sources upstream, and prepare the measures due at the "
        "limit."
    ),
}
GENERIC_INSTRUCTION = (
    "Review the evidence with the departments involved and decide whether an on-site "
    "inspection is needed."
)
RESOLVED_INSTRUCTION = (
    "The incident is over: no further action is required. Close open field tasks and keep "
    "monitoring as usual."
)
CANCELLED_INSTRUCTION = (
    "This warning has been withdrawn: disregard it and stand down any action taken on it."
)


def cap_categories(scenario: str) -> tuple[CapCategory, ...]:
    """CAP categories of a Tocsin scenario; ``Other`` for an unknown one."""
    return SCENARIO_CATEGORIES.get(scenario, ("Other",))


def cap_event(scenario: str) -> str:
    """Human-readable event type of a scenario."""
    known = SCENARIO_EVENTS.get(scenario)
    if known:
        return known
    text = xml_text(scenario.replace("_", " ")).strip()
    return text[:1].upper() + text[1:] if text else "Tocsin early warning"


def default_instruction(warning: Warning) -> str:
    """What the recipient should do, by status and scenario."""
    if warning.status == "resolved":
        return RESOLVED_INSTRUCTION
    if warning.status == "cancelled":
        return CANCELLED_INSTRUCTION
    return SCENARIO_INSTRUCTIONS.get(warning.scenario, GENERIC_INSTRUCTION)
