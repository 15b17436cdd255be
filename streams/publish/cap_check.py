"""Checks on published CAP alerts that need no schema library: well-formed, CAP 1.2
namespace, one alert per warning version, unique identifiers, and every Update/Cancel
referencing all earlier versions of its warning. With lxml installed and the OASIS XSD at
hand (``xsd``), each alert is also validated against the schema."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

NS = "urn:oasis:names:tc:emergency:cap:1.2"


@dataclass
class CapCheck:
    alerts: int = 0
    schema_validated: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.alerts > 0 and not self.problems


def check_alerts(raw: Iterable[bytes], xsd: Path | None = None) -> CapCheck:
    res = CapCheck()
    schema = None
    if xsd is not None and xsd.is_file():
        try:
            from lxml import etree  # type: ignore[import-untyped]
        except ImportError:
            schema = None
        else:
            schema = etree.XMLSchema(etree.parse(str(xsd)))
            res.schema_validated = True
    seen: set[str] = set()
    per_incident: dict[str, int] = {}
    for i, value in enumerate(raw, start=1):
        res.alerts += 1
        try:
            root = ET.fromstring(value)
        except ET.ParseError as e:
            res.problems.append(f"alert #{i}: not well-formed XML ({e})")
            continue
        if root.tag != f"{{{NS}}}alert":
            res.problems.append(f"alert #{i}: root is {root.tag}, not a CAP 1.2 alert")
            continue
        ident = root.findtext(f"{{{NS}}}identifier") or ""
        if ident in seen:
            res.problems.append(f"alert #{i}: identifier {ident} published twice")
        seen.add(ident)
        msg_type = root.findtext(f"{{{NS}}}msgType")
        incident = root.findtext(f"{{{NS}}}incidents") or ident
        earlier = per_incident.get(incident, 0)
        refs = (root.findtext(f"{{{NS}}}references") or "").split()
        if msg_type in ("Update", "Cancel") and len(refs) != earlier:
            res.problems.append(f"alert #{i} ({ident}, {msg_type}): {len(refs)} references, "
                                f"expected {earlier}")
        if msg_type == "Alert" and earlier:
            res.problems.append(f"alert #{i} ({ident}): a second Alert for {incident}")
        per_incident[incident] = earlier + 1
        if schema is not None:
            from lxml import etree

            if not schema.validate(etree.fromstring(value)):
                res.problems.append(f"alert #{i} ({ident}): {schema.error_log.last_error}")
    return res


__all__ = ["CapCheck", "check_alerts"]
