"""``tocsin schema``: typed JSON Schemas, the enums of the files in force, examples that
validate, and (with the jsonschema package) real records that validate against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.core.contract import REPLAY, SIGNALS, contract
from streams.core.regions import RegionRegistry
from streams.core.schemas import PUBLIC_SCHEMAS, SOURCE_MODELS, SOURCES
from streams.core.settings import TocsinSettings
from streams.core.signals import packaged
from streams.core.topics import SOURCE_TOPICS
from streams.tools.cli import app

TYPED = ("type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const")


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return contract(TocsinSettings())


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every property of ``schema`` and of its definitions and variants."""
    found = list(schema.get("properties", {}).items())
    for sub in [*schema.get("$defs", {}).values(), *schema.get("oneOf", [])]:
        found += _properties(sub)
    return found


def test_every_topic_then_replay_and_signals(schemas: dict[str, dict[str, Any]]) -> None:
    assert list(schemas) == [*PUBLIC_SCHEMAS, REPLAY, SIGNALS]


def test_every_property_is_typed_and_described(schemas: dict[str, dict[str, Any]]) -> None:
    for key, schema in schemas.items():
        props = _properties(schema)
        assert props, key
        for name, prop in props:
            assert any(k in prop for k in TYPED), f"{key}.{name} has no type: {prop}"
    for topic in SOURCE_TOPICS.values():  # every field a data engineer fills is explained
        for name, prop in schemas[topic]["properties"].items():
            assert prop.get("description"), f"{topic}.{name}"
            assert "\n" not in prop["description"]


def test_times_are_date_time_and_required_fields_listed(
        schemas: dict[str, dict[str, Any]]) -> None:
    env = schemas["tocsin.env.readings"]
    assert env["properties"]["observed_at"] == {
        **env["properties"]["observed_at"], "type": "string", "format": "date-time"}
    assert set(env["required"]) == {"reading_id", "sensor_id", "metric", "value", "unit",
                                    "region", "observed_at", "department"}
    assert schemas["tocsin.warnings"]["properties"]["severity"]["enum"] == [
        "Extreme", "Severe", "Moderate", "Minor", "Unknown"]


def test_enums_of_the_files_in_force(schemas: dict[str, dict[str, Any]],
                                     registry: RegionRegistry) -> None:
    cat = packaged()
    for topic in SOURCE_TOPICS.values():
        assert schemas[topic]["properties"]["region"]["enum"] == sorted(registry.ids())
    env = schemas["tocsin.env.readings"]
    assert env["properties"]["metric"]["enum"] == sorted(cat.metrics)
    units = {rule["if"]["properties"]["metric"]["const"]: rule["then"]["properties"]["unit"]
             for rule in env["allOf"]}
    assert units == {m: {"enum": sorted(s.accepted)} for m, s in cat.metrics.items()}
    sig = schemas[SIGNALS]["properties"]
    assert sig["metric"]["enum"] == sorted(cat.metrics)
    assert sig["category"]["enum"] == sorted({s.category for s in cat.metrics.values()})
    assert sig["unit"]["enum"] == sorted({s.unit for s in cat.metrics.values()})
    replay = schemas[REPLAY]
    assert replay["properties"]["source"]["enum"] == list(SOURCES)
    for src, topic in SOURCE_TOPICS.items():  # the description maps each value to its topic
        assert f"{src}: {topic}" in replay["properties"]["source"]["description"]


@pytest.mark.parametrize("topic", list(PUBLIC_SCHEMAS))
def test_each_example_validates_against_its_model(
        schemas: dict[str, dict[str, Any]], topic: str) -> None:
    model = PUBLIC_SCHEMAS[topic]
    examples = schemas[topic]["examples"]
    assert examples
    for e in examples:
        again = json.loads(model.model_validate(e).model_dump_json())
        assert model.model_validate(again) == model.model_validate(e)


def test_replay_examples_are_records_with_their_source(
        schemas: dict[str, dict[str, Any]]) -> None:
    examples = schemas[REPLAY]["examples"]
    assert {e["source"] for e in examples} == set(SOURCES)
    for e in examples:
        rest = {k: v for k, v in e.items() if k != "source"}
        SOURCE_MODELS[e["source"]].model_validate(rest)


def test_cli_schema_topic_option(schemas: dict[str, dict[str, Any]]) -> None:
    res = CliRunner().invoke(app, ["schema", "--topic", "replay"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {REPLAY: schemas[REPLAY]}
    res = CliRunner().invoke(app, ["schema", "--topic", "tocsin.nope"])
    assert res.exit_code == 2 and "no schema for topic 'tocsin.nope'" in res.stderr


def test_real_records_validate_against_the_printed_schema(
        schemas: dict[str, dict[str, Any]], scenario: Any, registry: RegionRegistry) -> None:
    """Every simulated record ingest accepts validates against the replay schema."""
    jsonschema = pytest.importorskip("jsonschema")
    check = jsonschema.Draft202012Validator
    for key, schema in schemas.items():
        check.check_schema(schema)
        v = check(schema, format_checker=jsonschema.FormatChecker())
        for e in schema.get("examples", []):
            assert not list(v.iter_errors(e)), (key, e)
    replay = check(schemas[REPLAY], format_checker=jsonschema.FormatChecker())
    from streams.evaluation.replay_score import read_replay
    from streams.ingest.ingestor import Ingestor, Origin

    ing = Ingestor(registry)
    texts = Path(scenario.events).read_text("utf-8").splitlines()
    accepted = 0
    for ln in list(read_replay(Path(scenario.events)))[:3000]:
        if ln.source is None:
            continue
        res = ing.ingest(ln.source, ln.raw, Origin("t", 0, ln.lineno, ln.key))
        if res.record is not None:
            accepted += 1
            errors = [e.message for e in replay.iter_errors(json.loads(texts[ln.lineno - 1]))]
            assert not errors, (ln.lineno, errors)
    assert accepted > 2500
    env = next(json.loads(t) for t in texts if json.loads(t)["source"] == "env")
    wrong_unit = next(u for u in schemas[SIGNALS]["properties"]["accepted"]["propertyNames"][
        "enum"] if u not in packaged().metrics[env["metric"]].accepted)
    for bad in ({"region": "Harbour"}, {"unit": wrong_unit}, {"metric": "pm2_5"}):
        assert list(replay.iter_errors({**env, **bad})), bad
    if "date-time" in jsonschema.FormatChecker().checkers:  # needs rfc3339-validator
        assert list(replay.iter_errors({**env, "observed_at": "2026-03-02T08:00:00"}))
