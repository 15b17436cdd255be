"""One frozen settings object, read from ``TOCSIN_*`` environment variables (or a .env file)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, tzinfo
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from detectors.fusion.versions import QUIET_S
from detectors.signals.calendar import DEFAULT_FILE as DEFAULT_HOLIDAYS
from detectors.signals.calendar import CalendarError, HolidayCalendar, load_calendar
from streams.core.connect import DEFAULT_BROKER
from streams.core.errors import ConfigError

DEFAULT_REGISTRY = Path(__file__).resolve().parents[1] / "data" / "regions.csv"


class TocsinSettings(BaseSettings):
    """Every knob of a Tocsin worker. Environment variables take the ``TOCSIN_`` prefix,
    e.g. ``TOCSIN_BROKER=kafka://k1:9092,k2:9092``."""

    model_config = SettingsConfigDict(
        env_prefix="TOCSIN_", env_file=".env", env_file_encoding="utf-8", frozen=True,
        extra="ignore",
    )

    # --- broker -----------------------------------------------------------------
    broker: str = Field(
        f"kafka://{DEFAULT_BROKER}",
        description="Kafka bootstrap servers, comma separated, with or without kafka:// scheme.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol: TLS with SSL/SASL_SSL, SASL "
        "authentication with SASL_*.")
    ssl_cafile: Path | None = Field(
        None, description="CA bundle that signed the broker certificate.")
    ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client key for mutual TLS.")
    ssl_check_hostname: bool = Field(
        True, description="Check that the broker certificate names the host connected to.")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL).")
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(
        None, description="SASL password (a secret: never logged or printed).")
    broker_unavailable_limit_s: float = Field(
        120.0, gt=0,
        description="Exit 69 (BrokerUnavailableError) after this long without a broker, at "
        "start-up (worker, topics create, replay) as when running."
    )

    # --- worker -------------------------------------------------------------------
    app_id: str = Field("tocsin", description="Consumer group / faust application id.")
    topic_prefix: str = Field(
        "", description="Prepended to every topic name (isolates tests or tenants on one cluster)."
    )
    partitions: int = Field(4, ge=1, le=1024, description="Partitions of the Tocsin topics.")
    replication_factor: int = Field(
        1, ge=1, description="Replication factor of the topics `tocsin topics create` makes "
        "(3 on a production cluster).")
    batch_size: int = Field(1000, ge=1, description="Events taken per batch by each agent.")
    batch_within_s: float = Field(0.05, gt=0, description="Longest wait to fill a batch.")
    session_timeout_s: float = Field(
        8.0, gt=0, description="Consumer-group session timeout: a worker that stops "
        "heart-beating this long loses its partitions to the others.")
    rebalance_timeout_s: float = Field(
        8.0, gt=0, description="Longest the group waits for members to rejoin a rebalance.")
    heartbeat_interval_s: float = Field(
        1.0, gt=0, description="Consumer-group heartbeat interval.")
    fetch_max_wait_ms: int = Field(
        100, ge=1, le=60_000,
        description="Longest a fetch waits for data (faust hard-codes 1500; a broker that does "
        "not wake waiting fetches, like the embedded one, adds that much latency per hop).")
    batch_drain: bool = Field(
        True, description="Deliver each fetched batch to the streams under one flow-control "
        "wait instead of one per message (streams/faust_tuning.py).")
    uvloop: bool = Field(True, description="Run the worker on uvloop's event loop.")
    noop_monitor: bool = Field(
        True, description="Replace faust's per-event statistics monitor by a no-op one "
        "(Tocsin's own metrics count per batch).")
    web_port: int = Field(6066, ge=0, le=65535, description="Port of faust's web server.")
    web_enabled: bool = Field(
        False, description="Run faust's web server (not needed: /metrics is served on "
        "TOCSIN_METRICS_PORT).")
    data_dir: Path = Field(Path(".tocsin-data"), description="faust data directory.")

    # --- data ---------------------------------------------------------------------
    region_registry: Path = Field(DEFAULT_REGISTRY, description="CSV: region,name,lat,lon[,...].")
    dedup_window: int = Field(
        50_000, ge=1, description="Message ids remembered per source topic partition to drop "
        "exact re-deliveries (kept in the partition's checkpoint)."
    )
    max_ahead_s: float = Field(
        3600.0, ge=0,
        description="Records whose event time is more than this ahead of the worker's clock "
        "are dead-lettered (one record dated 2999 would otherwise make every later one late).")
    min_event_time: datetime = Field(
        datetime(2000, 1, 1, tzinfo=UTC),
        description="Records with an earlier event time are dead-lettered (a broken clock).")
    allowed_lateness_s: float = Field(
        1800.0, ge=0, description="Event-time lateness accepted before a bucket closes."
    )
    correlation_window_s: float = Field(
        6 * 3600.0, gt=0, description="Anomalies of a region this close in event time correlate."
    )
    department_lags_s: dict[Literal["env", "complaint", "market"], float] = Field(
        default_factory=dict,
        description="How long after other departments' anomalies a source's own may come "
        "and still join them (JSON, seconds per source, e.g. {\"complaint\": 36000}; never "
        "shorter than correlation_window_s). Empty by default: sustained sensor shifts are "
        "re-reported hourly while they last, and longer lags measured more chance pairings "
        "than late joins (docs/correlation.md).",
    )
    early_firing: bool = Field(
        True,
        description="Publish a warning as soon as the anomalies that have arrived open it "
        "(fire on arrival), not only once the event-time watermark has passed them by the "
        "allowed lateness; the on-time correlation still confirms, updates or withdraws it.",
    )
    reorder_idle_s: float = Field(
        30.0, gt=0,
        description="A source partition silent this long (wall clock) stops holding back the "
        "event-time reorder buffer in front of the correlator; when all are silent, it flushes. "
        "Must exceed session_timeout_s + rebalance_timeout_s: the partitions of a worker that "
        "died are silent until another takes them over, and must hold the buffer back till then.",
    )
    quiet_resolve_s: float = Field(
        QUIET_S, gt=0, description="An incident with no new evidence for this long resolves."
    )
    neighbour_decay: float = Field(
        1.0, ge=0,
        description="Anomalies of a neighbouring region count in a region's incidents with "
        "their p-value multiplied by 10**neighbour_decay (1.0: one order of magnitude weaker).",
    )
    publish_cap: bool = Field(
        True, description="Also publish every warning version as CAP 1.2 XML to "
        "tocsin.warnings.cap.")
    cap_sender: str = Field(
        "tocsin@example.org", description="CAP <sender>: set your organisation's address.")
    pseudonym_key: SecretStr | None = Field(
        None, description="HMAC key for pseudonymising reporters' identifiers "
        "(TOCSIN_PSEUDONYM_KEY); unset: a random key per process, so pseudonyms do not link "
        "across restarts (a warning is logged).")
    scenarios: Path | None = Field(
        None, description="Scenario templates YAML (default: the packaged scenarios.yaml)."
    )
    holidays: Path | None = Field(
        None, description="Holiday calendar YAML: the city's UTC offset, public holidays and "
        "make-up working days; the count baselines keep working days apart from weekends "
        "and holidays (default: the packaged holidays.yaml, China 2024-2026).")
    signals: Path | None = Field(
        None, description="Signal catalogue YAML: every sensor metric accepted, its canonical "
        "and accepted units, bad direction, regulatory limits and the scenario templates it "
        "feeds (default: the packaged signals.yaml; `tocsin signals` lists it).")
    timezone: str | None = Field(
        None, description="The duty officers' time zone, an IANA name such as Asia/Shanghai: "
        "times in warning explanations are shown in it (default: the region registry's "
        "timezone column, else UTC).")
    grants: Path | None = Field(
        None, description="Sharing grants YAML: per-audience warning views on "
        "tocsin.warnings.view.<audience>, each release audited on tocsin.releases "
        "(docs/sharing.md). Unset: no views and no releases; streams/data/grants.yaml is a "
        "sample, never read unless pointed at.")

    checkpoint_interval_s: float = Field(
        10.0, gt=0,
        description="Seconds between checkpoints of the partitions that changed: detector, "
        "de-duplication, reorder and correlator state with the offsets it covers, on the "
        "compacted tocsin.checkpoints topic. Offsets are committed only with a checkpoint, "
        "so a crash re-processes at most this much input (its outputs are idempotent by id).")
    checkpoint_key: SecretStr | None = Field(
        None, description="HMAC key that signs checkpoints (TOCSIN_CHECKPOINT_KEY); a "
        "checkpoint signed with another key is refused. Unset: a SHA-256 digest guards "
        "against corruption only, and broker ACLs must keep other writers off the topic.")

    # --- observability and notification ---------------------------------------------
    metrics_port: int = Field(
        9464, ge=0, le=65535,
        description="Port of the worker's Prometheus /metrics endpoint (0: no endpoint).")
    metrics_addr: str = Field("0.0.0.0", description="Address the /metrics endpoint binds.")
    metrics_max_signals: int = Field(
        5000, ge=0,
        description="Most (region, signal kind) series exported as observed/expected gauges; "
        "further ones are counted in tocsin_metrics_signals_dropped_total, not exported.")
    entity_risk_level: float = Field(
        6.0, gt=0,
        description="Risk score (-log10 p of a market entity's recalls, licence violations, "
        "failed inspections and complaints against the population) at which an entity_risk "
        "warning to the market regulator opens; it resolves once the score decays below "
        "this level minus 1 (docs/detectors.md, Entity risk).")
    entity_risk_top: int = Field(
        20, ge=0, le=1000,
        description="Riskiest entities exported as the tocsin_entity_risk_score gauge "
        "(labelled by credit code only; 0: none).")
    grafana_url: str | None = Field(
        None, description="Grafana base URL for warning annotations (unset: no annotations).")
    grafana_token: SecretStr | None = Field(
        None, description="Grafana service-account token (Bearer) for annotations and push.")
    grafana_dashboard_uid: str = Field(
        "tocsin-overview", description="Dashboard the warning annotations are attached to.")
    alertmanager_url: str | None = Field(
        None, description="Alertmanager base URL, e.g. http://alertmanager:9093 (unset: no "
        "notifications).")
    alertmanager_resend_s: float = Field(
        60.0, gt=0, description="Active warnings are re-posted to Alertmanager this often.")
    runbook_url: str = Field(
        "https://github.com/tocsin/tocsin/blob/main/docs/runbook.md",
        description="Base of the runbook_url annotation (#<scenario> is appended).")
    dashboard_url: str = Field(
        "http://localhost:3000/d/tocsin-region",
        description="Base of the generatorURL of alerts (region drill-down dashboard).")

    @field_validator("pseudonym_key", "checkpoint_key")
    @classmethod
    def _key_long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value().encode()) < 16:
            raise ValueError("a key must be at least 16 bytes; generate one with "
                             "`python -c 'import secrets; print(secrets.token_hex(32))'`")
        return v

    @model_validator(mode="after")
    def _idle_outlasts_a_takeover(self) -> TocsinSettings:
        takeover = self.session_timeout_s + self.rebalance_timeout_s
        if self.reorder_idle_s <= takeover:
            raise ValueError(
                f"TOCSIN_REORDER_IDLE_S ({self.reorder_idle_s:g}) must exceed "
                f"TOCSIN_SESSION_TIMEOUT_S + TOCSIN_REBALANCE_TIMEOUT_S ({takeover:g}): a dead "
                "worker's partitions are silent until another worker takes them over, and "
                "releasing past them then reorders the warnings")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None:
            zone_info(v, "TOCSIN_TIMEZONE")  # an unknown zone fails at start
        return v

    def zone(self, registry_zone: str | None = None) -> tzinfo:
        """The time zone explanations are written in: ``timezone``, else the region
        registry's (``registry_zone``), else UTC."""
        name = self.timezone or registry_zone
        return UTC if name is None else zone_info(name, "TOCSIN_TIMEZONE")

    @field_validator("holidays")
    @classmethod
    def _holidays_readable(cls, v: Path | None) -> Path | None:
        if v is not None:
            load_holidays(v)  # a bad file fails at start, naming the file and the entry
        return v

    @cached_property
    def holiday_calendar(self) -> HolidayCalendar:
        """The calendar of ``holidays`` (or of the packaged file)."""
        return load_holidays(self.holidays)

    @field_validator("broker")
    @classmethod
    def _broker_not_empty(cls, v: str) -> str:
        if not bootstrap_list(v):
            raise ValueError("TOCSIN_BROKER must name at least one host:port")
        return v

    @cached_property
    def bootstrap_servers(self) -> list[str]:
        return bootstrap_list(self.broker)

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{hp}" for hp in self.bootstrap_servers)

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        ctx = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        ctx.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            ctx.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return ctx

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by aiokafka and kafka-python clients."""
        kw: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        ctx = self.ssl_context()
        if ctx is not None:
            kw["ssl_context"] = ctx
        if self.security_protocol.startswith("SASL"):
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return kw


def bootstrap_list(broker: str) -> list[str]:
    """``"kafka://a:1;kafka://b:2"`` or ``"a:1,b:2"`` -> ``["a:1", "b:2"]``."""
    out = []
    for part in broker.replace(";", ",").split(","):
        part = part.strip()
        if part.startswith("kafka://"):
            part = part[len("kafka://") :]
        part = part.rstrip("/")
        if part:
            out.append(part)
    return out


def zone_info(name: str, where: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`ConfigError` (naming ``where``) if unknown."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {name!r}: use an IANA name such as "
                          "Asia/Shanghai, Europe/Berlin or UTC") from None


def load_holidays(path: Path | None) -> HolidayCalendar:
    """The holiday calendar in ``path`` (None: the packaged one); :class:`ConfigError`
    names the file and the entry that is wrong."""
    try:
        return load_calendar(path or DEFAULT_HOLIDAYS)
    except CalendarError as e:
        raise ConfigError(f"TOCSIN_HOLIDAYS: {e}") from None


def load_settings(**overrides: Any) -> TocsinSettings:
    """Settings from the environment, with explicit overrides (e.g. from CLI options)."""
    return TocsinSettings(**{k: v for k, v in overrides.items() if v is not None})
