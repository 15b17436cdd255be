"""The topic catalogue and idempotent creation with kafka-python's admin client."""

from __future__ import annotations

from dataclasses import dataclass

from streams.core.settings import TocsinSettings

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False
    partitions: int | None = None  # None: settings.partitions
    extra: tuple[tuple[str, str], ...] = ()  # further topic configs

    def configs(self) -> dict[str, str]:
        cfg = {"retention.ms": str(self.retention_ms)}
        cfg["cleanup.policy"] = "compact" if self.compacted else "delete"
        cfg.update(self.extra)
        return cfg


ENV = "tocsin.env.readings"
COMPLAINTS = "tocsin.citizen.complaints"
MARKET = "tocsin.market.events"
ANOMALIES = "tocsin.anomalies"
WARNINGS = "tocsin.warnings"
CONDITIONS = "tocsin.conditions"
DEADLETTER = "tocsin.deadletter"
FEEDBACK = "tocsin.feedback"
WARNINGS_CAP = "tocsin.warnings.cap"
RELEASES = "tocsin.releases"
CHECKPOINTS = "tocsin.checkpoints"
VIEW_PREFIX = "tocsin.warnings.view."
ENTITY_RISK = "tocsin.entities.risk"

SOURCE_TOPICS = {"env": ENV, "complaint": COMPLAINTS, "market": MARKET}

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(ENV, "Environmental sensor readings (keyed by region)."),
    TopicSpec(COMPLAINTS, "Citizen complaints, free text with personal data (keyed by region)."),
    TopicSpec(MARKET, "Market-regulation events (keyed by region)."),
    TopicSpec(ANOMALIES, "Detector findings (internal, keyed by region).", 3 * DAY_MS),
    TopicSpec(WARNINGS, "Cross-department warnings, every version (keyed by warning_id).",
              30 * DAY_MS),
    TopicSpec(CONDITIONS, "City-wide (common-mode) conditions, every version (keyed by "
              "condition_id).", 30 * DAY_MS),
    TopicSpec(DEADLETTER, "Records that failed ingest: original bytes, origin and reason.",
              30 * DAY_MS),
    TopicSpec(FEEDBACK, "Duty officers' decisions on warnings (keyed by region).", 90 * DAY_MS),
    TopicSpec(WARNINGS_CAP, "Every warning version as an OASIS CAP 1.2 XML alert "
              "(keyed by warning_id).", 30 * DAY_MS),
    TopicSpec(RELEASES, "Audit of every warning view released to an audience under a sharing "
              "grant: who, which version, which fields, when (no content).", 400 * DAY_MS),
    # compaction only cleans closed segments: roll them hourly and compact soon, so a
    # restore reads a few generations per partition, not every one ever written
    TopicSpec(CHECKPOINTS, "Workers' per-partition state and the offsets it covers "
              "(internal, compacted; streams/checkpoint.py).", 7 * DAY_MS, compacted=True,
              extra=(("segment.ms", str(3600 * 1000)), ("segment.bytes", str(256 * 2**20)),
                     ("min.cleanable.dirty.ratio", "0.1"),
                     ("max.compaction.lag.ms", str(3600 * 1000)))),
    TopicSpec(ENTITY_RISK, "Market entities' risk scores, sent on a material change "
              "(compacted, keyed by entity code; streams/pipeline/entities.py).", 30 * DAY_MS,
              compacted=True),
)


def view_topic(audience: str) -> str:
    """The topic of an audience's warning views: ``tocsin.warnings.view.<audience>``."""
    return VIEW_PREFIX + audience


def grant_topics(settings: TocsinSettings) -> tuple[TopicSpec, ...]:
    """One view topic per audience of the configured grants (none when unset)."""
    if settings.grants is None:
        return ()
    from streams.publish.grants import load_grants

    return tuple(
        TopicSpec(view_topic(g.audience), f"Warning views for {g.audience} under its sharing "
                  f"grant ({g.purpose}; keyed by warning_id).", 30 * DAY_MS)
        for g in load_grants(settings.grants))


def topic_name(settings: TocsinSettings, base: str) -> str:
    return settings.topic_prefix + base


def admin_client(settings: TocsinSettings, patient: bool = True):  # type: ignore[no-untyped-def]
    """A kafka-python admin client; waits for the broker up to
    ``TOCSIN_BROKER_UNAVAILABLE_LIMIT_S`` (streams/core/connect.py)."""
    from kafka.admin import KafkaAdminClient

    from streams.core.connect import connect

    kw = settings.kafka_client_kwargs()
    if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG:  # kafka-python >= 3
        # it retries within one attempt, 30 s by default: make that attempt the limit's
        wait_s = settings.broker_unavailable_limit_s if patient else 5.0
        kw["bootstrap_timeout_ms"] = max(1, int(wait_s * 1000))
    return connect(lambda: KafkaAdminClient(client_id=f"{settings.app_id}-admin",
                                            request_timeout_ms=15000, **kw), settings, patient)


def create_topics(settings: TocsinSettings) -> dict[str, str]:
    """Create every catalogue topic, and the view topic of every audience of the configured
    grants, that does not exist yet. Returns name -> outcome."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    specs = CATALOGUE + grant_topics(settings)  # a bad grants file fails before connecting
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        out: dict[str, str] = {}
        for spec in specs:
            name = topic_name(settings, spec.name)
            if name in existing:
                out[name] = "exists"
                continue
            nt = NewTopic(name, spec.partitions or settings.partitions,
                          settings.replication_factor, topic_configs=spec.configs())
            try:
                admin.create_topics([nt])
                out[name] = "created"
            except TopicAlreadyExistsError:
                out[name] = "exists"
        return out
    finally:
        admin.close()


def check_topics(settings: TocsinSettings) -> None:
    """Refuse to run on topics a worker cannot use: one missing, or agent topics with a
    partition count other than ``TOCSIN_PARTITIONS`` (faust then assigns them apart, and
    two workers would hold the state of one partition number)."""
    from streams.core.errors import ConfigError

    names = [topic_name(settings, t) for t in
             (*SOURCE_TOPICS.values(), ANOMALIES, FEEDBACK, CHECKPOINTS)]
    admin = admin_client(settings)
    try:
        # kafka-python >= 2.1 names the field "name" (earlier: "topic")
        meta = {m.get("name", m.get("topic")): m for m in admin.describe_topics(names)}
    finally:
        admin.close()
    missing = [n for n in names if n not in meta or meta[n].get("error_code")]
    if missing:
        raise ConfigError(f"topics missing: {', '.join(missing)}; run `tocsin topics create` "
                          "(with the same TOCSIN_TOPIC_PREFIX and TOCSIN_PARTITIONS) first")
    wrong = {n: len(meta[n]["partitions"] or []) for n in names
             if len(meta[n]["partitions"] or []) != settings.partitions}
    if wrong:
        raise ConfigError(
            "these topics do not have TOCSIN_PARTITIONS="
            f"{settings.partitions} partitions: "
            + ", ".join(f"{n} ({k})" for n, k in wrong.items())
            + "; every agent topic must have the same count (a producer may have "
            "auto-created one): recreate them or set TOCSIN_PARTITIONS to match")
