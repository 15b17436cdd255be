"""The region registry: a CSV with at least ``region,name,lat,lon`` (optional ``parent``,
``neighbours`` as a ``;``-separated list of region ids, ``timezone`` as an IANA name: the
default zone of warning explanations, ``TOCSIN_TIMEZONE``)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.core.errors import RegistryError

REQUIRED_COLUMNS = ("region", "name", "lat", "lon")


@dataclass(frozen=True)
class Region:
    region: str
    name: str
    lat: float
    lon: float
    parent: str | None = None
    neighbours: frozenset[str] = field(default_factory=frozenset)
    timezone: str | None = None


class RegionRegistry:
    """Region ids, names, centroids and adjacency. Adjacency is made symmetric."""

    def __init__(self, regions: list[Region]) -> None:
        if not regions:
            raise RegistryError("the region registry is empty: add at least one region row")
        self._by_id: dict[str, Region] = {}
        for r in regions:
            if r.region in self._by_id:
                raise RegistryError(f"region id {r.region!r} appears twice in the registry")
            self._by_id[r.region] = r
        adj: dict[str, set[str]] = {r.region: set(r.neighbours) for r in regions}
        for r in regions:
            for n in r.neighbours:
                if n not in self._by_id:
                    raise RegistryError(
                        f"region {r.region!r} names unknown neighbour {n!r}: add it or fix the id"
                    )
                adj[n].add(r.region)
        self._adj = {k: frozenset(v - {k}) for k, v in adj.items()}

    @classmethod
    def from_csv(cls, path: str | Path) -> RegionRegistry:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise RegistryError(
                f"cannot read region registry {p}: {e.strerror or e}; "
                "set TOCSIN_REGION_REGISTRY to a readable CSV"
            ) from e
        reader = csv.DictReader(text.splitlines())
        cols = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in cols]
        if missing:
            raise RegistryError(f"region registry {p} lacks column(s) {', '.join(missing)}")
        regions = []
        for lineno, row in enumerate(reader, start=2):
            rid = (row.get("region") or "").strip()
            if not rid:
                raise RegistryError(f"{p}:{lineno}: empty region id")
            try:
                lat = float(row["lat"])
                lon = float(row["lon"])
            except (TypeError, ValueError) as e:
                raise RegistryError(f"{p}:{lineno}: lat/lon must be numbers") from e
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise RegistryError(f"{p}:{lineno}: lat/lon out of range")
            neigh = frozenset(
                n.strip() for n in (row.get("neighbours") or "").split(";") if n.strip()
            )
            zone = (row.get("timezone") or "").strip() or None
            if zone is not None:
                try:
                    ZoneInfo(zone)
                except (ZoneInfoNotFoundError, ValueError):
                    raise RegistryError(f"{p}:{lineno}: unknown time zone {zone!r}: use an "
                                        "IANA name such as Asia/Shanghai") from None
            regions.append(
                Region(rid, (row.get("name") or rid).strip(), lat, lon,
                       (row.get("parent") or "").strip() or None, neigh, zone)
            )
        return cls(regions)

    def __contains__(self, region: object) -> bool:
        return region in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_id.values())

    def ids(self) -> list[str]:
        return list(self._by_id)

    def get(self, region: str) -> Region:
        try:
            return self._by_id[region]
        except KeyError:
            raise RegistryError(f"unknown region {region!r}") from None

    @property
    def timezone(self) -> str | None:
        """The registry's time zone: its regions' ``timezone`` (the first region's when
        they differ; None without the column)."""
        return next((r.timezone for r in self._by_id.values() if r.timezone), None)

    def neighbours(self, region: str) -> frozenset[str]:
        """Adjacent regions; without adjacency data, regions within 5 km of the centroid."""
        adj = self._adj.get(region, frozenset())
        if adj:
            return adj
        me = self._by_id.get(region)
        if me is None:
            return frozenset()
        return frozenset(
            r.region for r in self._by_id.values()
            if r.region != region and haversine_km(me.lat, me.lon, r.lat, r.lon) <= 5.0
        )

    def near(self, a: str, b: str) -> bool:
        """Same region or neighbours."""
        return a == b or b in self.neighbours(a)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
