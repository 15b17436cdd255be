"""The riskiest market entities as a bounded Prometheus view (``tocsin_entity_risk_score``).

The gauge is labelled by the entity's unified social credit code only (never its name, nor
anything from a complaint), and holds at most ``entity_risk_top`` entities: it is read from
the detect stage at scrape time, so an entity that decays or is overtaken leaves the view."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: entity reader: yields the riskiest entities, (credit code, risk score), at most top N
EntityReader = Callable[[], Iterable[tuple[str, float]]]


class EntityCollector(Collector):
    """Risk score of the riskiest market entities, read at scrape time."""

    def __init__(self, read: EntityReader) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily(
            "tocsin_entity_risk_score",
            "Risk score (-log10 p) of the riskiest market entities (the top "
            "entity_risk_top), labelled by unified social credit code only.",
            labels=["entity"])
        for entity, score in list(self._read()):
            g.add_metric([entity], score)
        yield g

    def describe(self) -> Iterator[Metric]:
        return iter(())
