from __future__ import annotations

import json
import logging
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.regions import RegionRegistry
from streams.core.schemas import Complaint
from streams.core.settings import TocsinSettings
from streams.ingest import ingestor as ingest_mod
from streams.ingest.ingestor import Ingestor, IngestResult, Origin
from streams.ingest.privacy import Pseudonymizer, id_check_char, luhn_ok, mask_text
from streams.pipeline.inprocess import Pipeline
from streams.pipeline.stages import partition_for
from streams.publish.cap import to_cap_series
from streams.tools.simulate import SimConfig, simulate

ORIGIN = Origin("tocsin.citizen.complaints", 0, 7, b"harbour")
ID_BODY = "11010519491231002"
VALID_ID = ID_BODY + id_check_char(ID_BODY)


def digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def luhn_complete(body: str) -> str:
    """``body`` + the check digit that makes it Luhn-valid."""
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


# --- mask_text ------------------------------------------------------------------------------

@pytest.mark.parametrize("phone", [
    "13800138000", "138-0013-8000", "+86 138 0013 8000", "010-62345678", "+8613800138000",
    "+44 20 7946 0958",
])
def test_phones_masked(phone: str) -> None:
    out = mask_text(f"smell near the canal, call me at {phone} today")
    assert out == "smell near the canal, call me at [PHONE] today"


def test_phone_in_chinese_text() -> None:
    assert mask_text("刺鼻气味，请联系13800138000谢谢") == "刺鼻气味，请联系[PHONE]谢谢"


def test_valid_resident_id_masked() -> None:
    assert VALID_ID == "11010519491231002X"
    assert mask_text(f"my ID is {VALID_ID}.") == "my ID is [ID]."
    assert mask_text(f"身份证号{VALID_ID.lower()}") == "身份证号[ID]"
    numeric = "11010519800101001"
    numeric += id_check_char(numeric)
    assert numeric[-1].isdigit()
    assert mask_text(f"ID {numeric}") == "ID [ID]"


def test_resident_id_with_wrong_check_digit_left_alone() -> None:
    # a wrong check digit that is not accidentally a Luhn-valid card number either
    wrong = next(ID_BODY + d for d in "0123456789" if not luhn_ok(ID_BODY + d))
    assert wrong != VALID_ID
    text = f"reference {wrong} in the file"
    assert mask_text(text) == text


def test_full_width_digits() -> None:
    fw = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
    assert mask_text(f"身份证{VALID_ID[:17].translate(fw)}X") == "身份证[ID]"
    assert mask_text(f"电话{'13800138000'.translate(fw)}") == "电话[PHONE]"
    assert mask_text(f"卡号 {'4111 1111 1111 1111'.translate(fw)}") == "卡号 [CARD]"


def test_email_masked() -> None:
    assert mask_text("write to li.wei+news@mail.example.com.cn now") == (
        "write to [EMAIL] now")
    assert mask_text("QQ 12345678@qq.com") == "QQ [EMAIL]"


@pytest.mark.parametrize("card", [
    "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111",
    luhn_complete("622202123456789012"),  # 19-digit UnionPay
])
def test_luhn_valid_card_masked(card: str) -> None:
    assert mask_text(f"charged twice on card {card} yesterday") == (
        "charged twice on card [CARD] yesterday")


def test_card_next_to_other_numbers() -> None:
    assert not luhn_ok("41111111111111115") and not luhn_ok("24111111111111111")
    assert mask_text("qty 2 4111 1111 1111 1111 5 times") == "qty 2 [CARD] 5 times"


def test_luhn_invalid_number_not_a_card() -> None:
    text = "order 4111 1111 1111 1112 was lost"
    assert not luhn_ok(digits(text))
    assert "[CARD]" not in mask_text(text)
    assert "4111 1111 1111 1112" in mask_text(text)


@pytest.mark.parametrize("text", [
    "price 12.5 yuan on 2026-03-02, 3 people ill",
    "12345",
    "pork 26.00 CNY/kg, up 45% since 2026-03-01 08:00",
    "Block 7, room 1203, 2 kids vomiting since 20:30",
    "",
])
def test_ordinary_numbers_unchanged(text: str) -> None:
    assert mask_text(text) == text


# --- Pseudonymizer -------------------------------------------------------------------------

def test_pseudonym_deterministic_and_format_independent() -> None:
    p = Pseudonymizer(b"key-one")
    a = p.pseudonym("138 0013 8000")
    assert a == p.pseudonym("138 0013 8000")
    assert a == p.pseudonym("+8613800138000") == p.pseudonym("138-0013-8000")
    assert a == Pseudonymizer(b"key-one").pseudonym("+86 138 0013 8000")
    assert re.fullmatch(r"phone:[0-9a-f]{20}", a)
    assert "13800138000" not in a and "0013" not in a


def test_pseudonym_differs_across_keys_and_values() -> None:
    p, q = Pseudonymizer(b"key-one"), Pseudonymizer(b"key-two")
    assert p.pseudonym("13800138000") != q.pseudonym("13800138000")
    assert p.pseudonym("13800138000") != p.pseudonym("13800138001")
    assert p.pseudonym("x", "email") != p.pseudonym("x", "phone")


def test_pseudonymizer_hides_key() -> None:
    p = Pseudonymizer(b"s3cret-key")
    assert "s3cret" not in repr(p) and "s3cret" not in str(p)
    assert not any("s3cret" in str(getattr(p, a, "")) for a in dir(p) if not a.startswith("_P"))
    with pytest.raises(ValueError):
        Pseudonymizer(b"")


# --- properties --------------------------------------------------------------------------

MOBILE_PREFIXES = [f"13{i}" for i in range(10)] + ["150", "151", "152", "155", "158", "186",
                                                     "187", "188", "189", "177", "199"]


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    n = draw(st.sampled_from(MOBILE_PREFIXES)) + draw(st.from_regex(r"[0-9]{8}", fullmatch=True))
    fmt = draw(st.sampled_from(["plain", "dash", "space", "intl", "intl_plain"]))
    return {
        "plain": n, "dash": f"{n[:3]}-{n[3:7]}-{n[7:]}", "space": f"{n[:3]} {n[3:7]} {n[7:]}",
        "intl": f"+86 {n[:3]} {n[3:7]} {n[7:]}", "intl_plain": f"+86{n}",
    }[fmt]


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    body = draw(st.from_regex(
        r"[1-6][0-9]{5}(19[5-9][0-9]|200[0-9])(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}",
        fullmatch=True))
    return body + id_check_char(body)


@st.composite
def cards(draw: st.DrawFn) -> str:
    length = draw(st.sampled_from([16, 19]))
    prefix = draw(st.sampled_from(["4", "51", "62"]))
    body = prefix + draw(st.from_regex(rf"[0-9]{{{length - 1 - len(prefix)}}}", fullmatch=True))
    card = luhn_complete(body)
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(card[i:i + 4] for i in range(0, length, 4))


emails = st.builds(
    lambda local, dom, tld: f"{local}@{dom}.{tld}",
    st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["com", "cn", "com.cn", "org", "net"]),
)
pii = st.one_of(mobiles(), resident_ids(), cards(), emails)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=6), pii, st.data())
def test_embedded_pii_never_survives(filler: list[str], item: str, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(filler)))
    words = [*filler[:pos], item, *filler[pos:]]
    text = " ".join(words)
    out = mask_text(text)
    assert item not in out
    if "@" not in item:
        national = digits(item).removeprefix("86") if item.startswith("+86") else digits(item)
        assert national not in out
        assert national not in digits(out) or national in digits(" ".join(filler))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_mask_total_and_idempotent(text: str) -> None:
    once = mask_text(text)
    assert mask_text(once) == once


# --- ingest and the whole pipeline --------------------------------------------------------

def complaint(**kw: object) -> dict[str, object]:
    return {
        "complaint_id": "c-pii-1", "channel": "hotline", "category": "odor",
        "text": f"chemical smell, call 138-0013-8000 or mail wang@example.cn, ID {VALID_ID}",
        "region": "harbour", "reporter_phone": "+86 138 0013 8000",
        "received_at": "2026-03-02T00:00:00Z", "department": "citizen_hotline", **kw,
    }


def test_ingest_masks_complaint(registry: RegionRegistry) -> None:
    pz = Pseudonymizer(b"test-key")
    ing = Ingestor(registry, pseudonymizer=pz)
    data = json.dumps(complaint()).encode()
    res = ing.ingest("complaint", data, ORIGIN)
    assert isinstance(res.record, Complaint)
    assert res.record.text == "chemical smell, call [PHONE] or mail [EMAIL], ID [ID]"
    assert res.record.reporter_phone == pz.pseudonym("13800138000")
    # a re-delivery of the same bytes is still recognised after masking
    assert ing.ingest("complaint", data, ORIGIN).duplicate
    # no reporter phone: stays None
    res2 = ing.ingest("complaint", json.dumps(
        complaint(complaint_id="c-pii-2", reporter_phone=None)).encode(), ORIGIN)
    assert res2.record is not None and res2.record.reporter_phone is None  # type: ignore[union-attr]


def test_ingest_without_key_warns_once(registry: RegionRegistry, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(ingest_mod, "_process_pseudonymizer", None)
    with caplog.at_level(logging.WARNING, logger="streams.ingest.ingestor"):
        a, b = Ingestor(registry), Ingestor(registry)
    assert sum("TOCSIN_PSEUDONYM_KEY" in r.getMessage() for r in caplog.records) == 1
    # one random key per process: the two ingestors link, a keyed one does not
    assert a.pseudonymizer.pseudonym("13800138000") == b.pseudonymizer.pseudonym("13800138000")
    keyed = Ingestor(registry, pseudonymizer=Pseudonymizer(b"k"))
    assert a.pseudonymizer.pseudonym("13800138000") != keyed.pseudonymizer.pseudonym(
        "13800138000")


def test_settings_key_reaches_ingestor(registry: RegionRegistry) -> None:
    key = "pipeline-test-key-0001"
    s = TocsinSettings(pseudonym_key=key)
    assert key not in repr(s) and key not in str(s.model_dump())
    pipe = Pipeline(s, registry)
    assert pipe.sources.ingestor.pseudonymizer.pseudonym("13800138000") == (
        Pseudonymizer(b"pipeline-test-key-0001").pseudonym("+86 138 0013 8000"))


def pii_corpus(rng: random.Random) -> list[str]:
    out = []
    for i in range(12):
        n = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        out.append([n, f"{n[:3]}-{n[3:7]}-{n[7:]}", f"+86 {n[:3]} {n[3:7]} {n[7:]}"][i % 3])
        body = f"{rng.randrange(110000, 660000)}19{rng.randrange(50, 99)}0{rng.randrange(1, 9)}1"
        body += f"{rng.randrange(1, 9)}{rng.randrange(100, 999)}"
        out.append(body + id_check_char(body))
        card = luhn_complete("62" + "".join(str(rng.randrange(10)) for _ in range(13)))
        out.append(" ".join(card[j:j + 4] for j in range(0, 16, 4)) if i % 2 else card)
        out.append(f"resident{rng.randrange(10**6)}.{i}@mail{i}.example.cn")
    return out


def test_pipeline_does_not_leak_pii(registry: RegionRegistry) -> None:
    rng = random.Random(16)
    corpus = pii_corpus(rng)
    sim = simulate(SimConfig(seed=16, days=4.5), registry)
    lines = list(sim.lines())
    start = datetime(2026, 3, 4, 10, tzinfo=UTC)  # inside the scenario, after warm-up
    # the injected complaints go in where the simulated stream reaches their time
    at = next(i for i, ln in enumerate(lines) if f'"{start:%Y-%m-%dT%H}' in ln)
    phones = [c for c in corpus if "@" not in c and len(digits(c)) in (11, 13)]
    injected = []
    for i in range(30):
        a, b = corpus[i % len(corpus)], corpus[(i * 7 + 3) % len(corpus)]
        rec = complaint(
            complaint_id=f"pii-{i:03d}", region="harbour", reporter_phone=phones[i % len(phones)],
            text=f"Strong chemical smell, eyes watering. Contact {a} (or {b}).",
            received_at=(start + timedelta(minutes=2 * i)).isoformat().replace("+00:00", "Z"))
        injected.append(json.dumps({"source": "complaint", **rec}))
    lines[at:at] = injected

    s = TocsinSettings(pseudonym_key="leak-test-key-00001")
    pipe = Pipeline(s, registry)
    records: list[str] = []
    real_ingest = pipe.sources.ingestor.ingest

    def spy(source: str, raw: bytes, origin: Origin) -> IngestResult:
        res = real_ingest(source, raw, origin)
        if res.record is not None:
            records.append(res.record.model_dump_json())
        return res

    pipe.sources.ingestor.ingest = spy  # type: ignore[method-assign]
    for lineno, line in enumerate(lines, start=1):
        obj = json.loads(line)
        source = obj.pop("source")
        key = obj["region"].encode() if isinstance(obj.get("region"), str) else None
        raw = json.dumps(obj, ensure_ascii=False).encode()
        pipe.feed(source, raw, Origin(f"replay:{source}", partition_for(key, s.partitions),
                                         lineno, key))
    pipe.finish()

    assert sum('"pii-' in r for r in records) == 30
    assert pipe.warnings, "the scenario should raise warnings, or the test checks nothing"
    blobs = records + [w.model_dump_json() for w in pipe.warnings]
    blobs += [a.model_dump_json() for a in pipe.anomalies]
    blobs += to_cap_series(pipe.warnings, registry)
    # dead letters keep the original bytes by design; none of the injected records is one
    assert not any("pii-" in d.model_dump_json() for d in pipe.dead_letters)
    everything = "\n".join(blobs)
    everything_digits = digits(everything)
    for item in corpus:
        assert item not in everything, item
        d = digits(item)
        assert d not in everything, item
        national = d.removeprefix("86") if item.startswith("+86") else d
        assert national not in everything_digits, item
    masked = [json.loads(r) for r in records if '"pii-' in r]
    assert all("[" in m["text"] for m in masked)
    assert all(m["reporter_phone"].startswith("phone:") for m in masked)


@pytest.mark.parametrize("name", ["pseudonym_key", "checkpoint_key"])
def test_a_short_key_is_refused_with_how_to_make_one(name: str) -> None:
    with pytest.raises(ValueError, match=r"at least 16 bytes.*secrets\.token_hex"):
        TocsinSettings(**{name: "short"})
    assert TocsinSettings(**{name: "x" * 16})
