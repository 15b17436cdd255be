"""Draw a city: 6-24 regions with centroids, parent districts and a connected, symmetric
adjacency (nearest-neighbour links, a few long links, components joined)."""

from __future__ import annotations

import math
import random

from streams.core.regions import Region, haversine_km

_SYLLABLES = ("bai", "he", "dong", "xi", "nan", "bei", "qing", "shan", "hu", "lin", "yang",
              "chang", "ning", "an", "fu", "jin", "hua", "gang", "tai", "ping", "xin", "cheng",
              "long", "song", "mei", "quan", "shui", "yuan", "ling", "kang")
_SUFFIXES = ("", " Jie", " Zhen", " Qu", " Lu")


def _names(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        name = (rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES)).capitalize()
        if name not in out:
            out.append(name)
    return out


def _ids(rng: random.Random, names: list[str]) -> list[str]:
    style = rng.randrange(3)
    code = rng.randrange(110000, 650000) // 100 * 100
    if style == 0:
        return [n.lower() for n in names]
    if style == 1:
        return [f"r{i + 1:02d}" for i in range(len(names))]
    return [str(code + i + 1) for i in range(len(names))]


def _points(rng: random.Random, n: int) -> list[tuple[float, float]]:
    """Centroids scattered in a disc of 6-15 km around a drawn city centre."""
    lat0, lon0 = rng.uniform(22.0, 40.0), rng.uniform(104.0, 122.0)
    radius_km = rng.uniform(6.0, 15.0)
    min_km = radius_km / math.sqrt(n) * 0.8
    pts: list[tuple[float, float]] = []
    while len(pts) < n:
        for _ in range(200):
            r = radius_km * math.sqrt(rng.random())
            a = rng.uniform(0, 2 * math.pi)
            lat = lat0 + r * math.cos(a) / 111.0
            lon = lon0 + r * math.sin(a) / (111.0 * math.cos(math.radians(lat0)))
            if all(haversine_km(lat, lon, p, q) >= min_km for p, q in pts):
                break
        pts.append((lat, lon))
    return pts


def _adjacency(rng: random.Random, pts: list[tuple[float, float]]) -> list[set[int]]:
    n = len(pts)

    def dist(i: int, j: int) -> float:
        return haversine_km(*pts[i], *pts[j])

    adj: list[set[int]] = [set() for _ in range(n)]
    for i in range(n):
        k = rng.choice((1, 2, 2, 3, 3, 4))
        for j in sorted((j for j in range(n) if j != i), key=lambda j: dist(i, j))[:k]:
            adj[i].add(j)
            adj[j].add(i)
    for _ in range(rng.choice((0, 0, 1, 2))):  # a few long links (a bridge, a metro line)
        i, j = rng.sample(range(n), 2)
        adj[i].add(j)
        adj[j].add(i)
    while True:  # join components through their closest pair
        comp = _component(adj, 0)
        if len(comp) == n:
            return adj
        i, j = min(((i, j) for i in comp for j in range(n) if j not in comp),
                   key=lambda p: dist(*p))
        adj[i].add(j)
        adj[j].add(i)


def _component(adj: list[set[int]], start: int) -> set[int]:
    seen, todo = {start}, [start]
    while todo:
        for j in adj[todo.pop()]:
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return seen


def draw_city(rng: random.Random) -> list[Region]:
    """6-24 regions, connected symmetric adjacency, 2-4 parent districts by bearing."""
    n = rng.randint(6, 24)
    names = _names(rng, n)
    ids = _ids(rng, names)
    pts = _points(rng, n)
    adj = _adjacency(rng, pts)
    lat0 = sum(p[0] for p in pts) / n
    lon0 = sum(p[1] for p in pts) / n
    n_parents = rng.randint(2, 4)
    turn = rng.uniform(0, 2 * math.pi)
    suffixes = [rng.choice(_SUFFIXES) for _ in range(n)]
    regions = []
    for i, (lat, lon) in enumerate(pts):
        bearing = (math.atan2(lat - lat0, lon - lon0) + turn) % (2 * math.pi)
        parent = f"district{int(bearing / (2 * math.pi) * n_parents) + 1}"
        regions.append(Region(ids[i], names[i] + suffixes[i], round(lat, 5), round(lon, 5),
                              parent, frozenset(ids[j] for j in adj[i])))
    return regions
