"""Behaviour of the power-meter JSON decoder: every field rule, every error code, boundaries."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.power import (
    DESCRIPTIONS,
    DecodedReading,
    MeterReading,
    PowerDecodeError,
    PowerErrorCode,
    decode_power,
    meter_from_topic,
)

CST = timezone(timedelta(hours=8))
TS = "2026-11-21T08:00:00+08:00"
FULL = {
    "meter": "E001-M01",
    "ts": TS,
    "p_kw": 152.4,
    "i_a": [12.1, 12.3, 11.9],
    "e_kwh": 123456.7,
    "switch": "on",
}


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def reading(**fields: Any) -> dict[str, Any]:
    """A valid reading with a meter, with some fields replaced (None becomes JSON null)."""
    base: dict[str, Any] = {"meter": "E001-M01", "ts": TS, "p_kw": 1.0}
    base.update(fields)
    return base


def decode_one(value: Any, topic_meter: str | None = None) -> DecodedReading:
    result = decode_power(encode(value), topic_meter)
    assert len(result) == 1
    return result[0]


def reject(payload: bytes, topic_meter: str | None = None) -> PowerDecodeError:
    with pytest.raises(PowerDecodeError) as info:
        decode_power(payload, topic_meter)
    return info.value


def schema_detail(value: Any, topic_meter: str | None = None) -> str:
    error = reject(encode(value), topic_meter)
    assert error.code is PowerErrorCode.SCHEMA_ERROR, error
    return error.detail


# -- the happy path ----------------------------------------------------------------------


def test_full_reading_maps_every_field() -> None:
    assert decode_power(encode(FULL)) == [
        DecodedReading(
            meter_id="E001-M01",
            ts=datetime(2026, 11, 21, 8, 0, tzinfo=CST),
            active_power_kw=152.4,
            current_a=(12.1, 12.3, 11.9),
            energy_kwh=123456.7,
            switch_on=True,
        )
    ]


def test_timestamp_is_aware_and_keeps_the_instant() -> None:
    ts = decode_one(FULL).ts
    assert ts.utcoffset() == timedelta(hours=8)
    assert ts == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)


def test_minimal_reading_takes_meter_from_topic() -> None:
    got = decode_one({"ts": "2026-11-21T00:00:00Z", "p_kw": 0}, topic_meter="E001-M01")
    assert got == DecodedReading(
        "E001-M01", datetime(2026, 11, 21, tzinfo=UTC), 0.0, None, None, None
    )


@pytest.mark.parametrize(("switch", "expected"), [("on", True), ("off", False), (None, None)])
def test_switch_state(switch: str | None, expected: bool | None) -> None:
    assert decode_one(reading(switch=switch)).switch_on is expected


def test_optional_fields_may_be_null() -> None:
    got = decode_one(reading(meter=None, i_a=None, e_kwh=None, switch=None), "E001-M01")
    assert (got.meter_id, got.current_a, got.energy_kwh, got.switch_on) == (
        "E001-M01",
        None,
        None,
        None,
    )


def test_integers_are_accepted_as_floats() -> None:
    got = decode_one(reading(p_kw=150, i_a=[1, 2, 3], e_kwh=0))
    assert got.active_power_kw == 150.0
    assert isinstance(got.active_power_kw, float)
    assert got.current_a == (1.0, 2.0, 3.0)
    assert all(isinstance(i, float) for i in got.current_a)
    assert got.energy_kwh == 0.0


def test_whitespace_around_the_value_is_allowed() -> None:
    assert decode_power(b" \r\n\t" + encode(FULL) + b"\n \t")[0].meter_id == "E001-M01"


def test_leading_byte_order_mark_is_ignored() -> None:
    assert decode_power(b"\xef\xbb\xbf" + encode(FULL))[0].active_power_kw == 152.4


def test_pretty_printed_batch() -> None:
    payload = json.dumps([FULL, reading(meter="E001-M02")], indent=2).encode()
    assert [r.meter_id for r in decode_power(payload)] == ["E001-M01", "E001-M02"]


# -- p_kw --------------------------------------------------------------------------------


@pytest.mark.parametrize("p_kw", [1e6, -1e6, 1_000_000, -1_000_000, 0, -0.0, -3.75, 1e-300])
def test_power_within_limits(p_kw: float) -> None:
    assert decode_one(reading(p_kw=p_kw)).active_power_kw == p_kw


@pytest.mark.parametrize("p_kw", [1_000_000.001, -1_000_000.001, 1_000_001, 1e7, -1e300])
def test_power_beyond_limits(p_kw: float) -> None:
    detail = schema_detail(reading(p_kw=p_kw))
    assert detail.startswith("p_kw: ")
    assert "1000000" in detail


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
@pytest.mark.parametrize("field", ["p_kw", "e_kwh"])
def test_non_finite_numbers_rejected(field: str, literal: bytes) -> None:
    fields = {"meter": b'"M"', "ts": b'"2026-11-21T08:00:00Z"', "p_kw": b"1", field: literal}
    payload = b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in fields.items()) + b"}"
    error = reject(payload)
    assert error.code is PowerErrorCode.SCHEMA_ERROR
    assert error.detail.startswith(f"{field}: ")
    assert "finite" in error.detail


def test_nan_inside_currents_rejected() -> None:
    error = reject(b'{"meter":"M","ts":"2026-11-21T08:00:00Z","p_kw":1,"i_a":[1,NaN,2]}')
    assert error.code is PowerErrorCode.SCHEMA_ERROR
    assert error.detail.startswith("i_a[1]: ")


@pytest.mark.parametrize("field", ["p_kw", "e_kwh", "i_a"])
@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_numbers(field: str, value: bool) -> None:
    bad = [value] if field == "i_a" else value
    detail = schema_detail(reading(**{field: bad}))
    assert detail.startswith(field)
    assert "number" in detail


@pytest.mark.parametrize("value", ["152.4", "", None, [152.4], {"v": 1}])
def test_power_must_be_a_number(value: Any) -> None:
    assert schema_detail(reading(p_kw=value)).startswith("p_kw: ")


# -- i_a ---------------------------------------------------------------------------------


@pytest.mark.parametrize("currents", [[5.0], [1.0, 2.0, 3.0], [0, 100_000, 0.5]])
def test_one_or_three_phase_currents(currents: list[float]) -> None:
    assert decode_one(reading(i_a=currents)).current_a == tuple(currents)


def test_two_phase_currents_rejected() -> None:
    assert schema_detail(reading(i_a=[1.0, 2.0])) == "i_a: needs 1 or 3 phase currents, not 2"


@pytest.mark.parametrize("currents", [[], [1, 2, 3, 4]])
def test_phase_count_outside_one_to_three_rejected(currents: list[float]) -> None:
    assert schema_detail(reading(i_a=currents)).startswith("i_a: ")


@pytest.mark.parametrize(
    ("currents", "index"), [([-0.1], 0), ([1, 100_000.01, 1], 1), ([1, 2, -1], 2)]
)
def test_phase_current_out_of_range(currents: list[float], index: int) -> None:
    assert schema_detail(reading(i_a=currents)).startswith(f"i_a[{index}]: ")


@pytest.mark.parametrize("value", [12.1, "12.1", {"a": 1}])
def test_currents_must_be_an_array(value: Any) -> None:
    assert schema_detail(reading(i_a=value)).startswith("i_a")


# -- e_kwh -------------------------------------------------------------------------------


@pytest.mark.parametrize("energy", [0, 0.0, 123456.7, 1e15])
def test_energy_accepted(energy: float) -> None:
    assert decode_one(reading(e_kwh=energy)).energy_kwh == energy


@pytest.mark.parametrize("energy", [-0.001, -1])
def test_negative_energy_rejected(energy: float) -> None:
    assert schema_detail(reading(e_kwh=energy)).startswith("e_kwh: ")


# -- switch ------------------------------------------------------------------------------


@pytest.mark.parametrize("switch", ["ON", "Off", "1", "", 1, 0, True, False])
def test_switch_only_on_or_off(switch: Any) -> None:
    assert schema_detail(reading(switch=switch)).startswith("switch: ")


# -- ts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T00:00:00Z", datetime(2026, 11, 21, tzinfo=UTC)),
        ("2026-11-21t00:00:00z", datetime(2026, 11, 21, tzinfo=UTC)),
        ("2026-11-21 08:00:00+08:00", datetime(2026, 11, 21, tzinfo=UTC)),
        ("2026-11-20T18:30:00-05:30", datetime(2026, 11, 21, tzinfo=UTC)),
        ("2026-11-21T00:00:00-00:00", datetime(2026, 11, 21, tzinfo=UTC)),
        ("2026-11-21T08:00:00.250+08:00", datetime(2026, 11, 21, 0, 0, 0, 250000, tzinfo=UTC)),
        ("2026-11-21T00:00:00.123456789Z", datetime(2026, 11, 21, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2028-02-29T23:59:59+23:59", datetime(2028, 2, 29, 0, 0, 59, tzinfo=UTC)),
    ],
)
def test_rfc3339_timestamps(text: str, expected: datetime) -> None:
    ts = decode_one(reading(ts=text)).ts
    assert ts == expected
    assert ts.tzinfo is not None


@pytest.mark.parametrize(
    "text", ["2026-11-21T08:00:00", "2026-11-21 08:00:00", "2026-11-21T08:00:00.5"]
)
def test_naive_timestamp_rejected_asking_for_offset(text: str) -> None:
    assert schema_detail(reading(ts=text)).startswith("ts: timestamp needs a UTC offset")


@pytest.mark.parametrize(
    "text",
    [
        "1763683200",  # unix seconds: pydantic alone would accept them
        "2026-11-21T08:00:00+0800",
        "2026-11-21T08:00:00+08",
        "2026-11-21_08:00:00Z",
        "2026-11-21T08:00Z",
        "20261121T080000Z",
        "2026-11-21",
        "2026-02-30T08:00:00Z",
        "2027-02-29T08:00:00Z",
        "2026-11-21T24:00:00Z",
        "2026-11-21T23:59:60Z",
        "2026-11-21T08:00:00+24:00",
        "2026-11-21T08:00:00.Z",
        "2026-11-21T08:00:00.1234567890Z",
        "0000-01-01T00:00:00Z",
        "2026-11-21T08:00:00Z ",
        "2026-11-21T08:00:00Z\n",
        "２０２６-11-21T08:00:00Z",  # full-width digits
        "",
        "now",
    ],
)
def test_malformed_timestamp_rejected(text: str) -> None:
    assert schema_detail(reading(ts=text)).startswith("ts: ")


@pytest.mark.parametrize("value", [1763683200, 1763683200.5, None, True, ["2026-11-21T00:00:00Z"]])
def test_timestamp_must_be_a_string(value: Any) -> None:
    assert schema_detail(reading(ts=value)).startswith("ts: ")


# -- meter -------------------------------------------------------------------------------


@pytest.mark.parametrize("meter", ["M", "E" * 64, "一号电表", "E001-M01_a.b:c", "a\u200bb"])
def test_valid_meter_ids(meter: str) -> None:
    assert decode_one(reading(meter=meter)).meter_id == meter


@pytest.mark.parametrize(
    "meter",
    [
        "",
        "E" * 65,
        "E001 M01",
        " E001",
        "E001\t",
        "E001\n",
        "E\u3000001",  # ideographic space
        "E\u00a0001",  # no-break space
        "E\x00",
        "E\x7f",
        "E\x85",
        "E\ufeff",
        "power/E001",
        "E+1",
        "E#1",
    ],
)
def test_invalid_meter_ids(meter: str) -> None:
    assert schema_detail(reading(meter=meter)).startswith("meter: ")


@pytest.mark.parametrize("meter", [1, 1.5, True, ["E001"]])
def test_meter_must_be_a_string(meter: Any) -> None:
    assert schema_detail(reading(meter=meter)).startswith("meter: ")


def test_missing_meter_without_topic_is_a_schema_error() -> None:
    detail = schema_detail({"ts": TS, "p_kw": 1})
    assert detail == "meter: required when the topic names no meter"


def test_null_meter_without_topic_is_a_schema_error() -> None:
    assert schema_detail(reading(meter=None)).startswith("meter: ")


def test_topic_meter_equal_to_reading_meter() -> None:
    assert decode_one(reading(meter="E001-M01"), topic_meter="E001-M01").meter_id == "E001-M01"


@pytest.mark.parametrize("meter", ["E001-M02", "e001-m01", "E001-M01x"])
def test_topic_meter_mismatch(meter: str) -> None:
    error = reject(encode(reading(meter=meter)), topic_meter="E001-M01")
    assert error.code is PowerErrorCode.METER_MISMATCH
    assert error.detail.startswith("meter: ")
    assert meter in error.detail
    assert "E001-M01" in error.detail


def test_mismatch_in_a_batch_names_the_index() -> None:
    payload = encode([{"ts": TS, "p_kw": 1}, reading(meter="E001-M02")])
    error = reject(payload, topic_meter="E001-M01")
    assert error.code is PowerErrorCode.METER_MISMATCH
    assert error.detail.startswith("[1].meter: ")


def test_batch_without_meters_on_a_meter_topic() -> None:
    got = decode_power(encode([{"ts": TS, "p_kw": 1}, {"ts": TS, "p_kw": 2}]), "E001-M01")
    assert [(r.meter_id, r.active_power_kw) for r in got] == [("E001-M01", 1.0), ("E001-M01", 2.0)]


def test_missing_meter_in_a_batch_names_the_index() -> None:
    detail = schema_detail([reading(), {"ts": TS, "p_kw": 1}])
    assert detail == "[1].meter: required when the topic names no meter"


@pytest.mark.parametrize("topic_meter", ["", "a b", "x/y", "#", "E" * 65])
def test_invalid_topic_meter_is_a_schema_error(topic_meter: str) -> None:
    error = reject(encode(FULL), topic_meter=topic_meter)
    assert error.code is PowerErrorCode.SCHEMA_ERROR
    assert error.detail.startswith("topic: ")


# -- unknown and missing keys ------------------------------------------------------------


def test_unknown_key_rejected() -> None:
    value = {"meter": "M", "ts": TS, "p_kw": 1, "pkw": 2}
    assert schema_detail(value) == "pkw: unknown field"


def test_typo_reports_both_missing_and_unknown() -> None:
    detail = schema_detail({"meter": "M", "ts": TS, "pkw": 2})
    assert "p_kw: required field missing" in detail
    assert "pkw: unknown field" in detail


@pytest.mark.parametrize("field", ["ts", "p_kw"])
def test_required_fields(field: str) -> None:
    value = reading()
    del value[field]
    assert schema_detail(value) == f"{field}: required field missing"


def test_odd_and_long_unknown_keys_are_quoted_and_shortened() -> None:
    detail = schema_detail(reading(**{"a b": 1}))
    assert detail == "'a b': unknown field"
    detail = schema_detail(reading(**{"k" * 5000: 1}))
    assert len(detail) < 100


# -- batches -----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 1000])
def test_batch_sizes_accepted(count: int) -> None:
    payload = encode([reading(p_kw=float(i)) for i in range(count)])
    got = decode_power(payload)
    assert [r.active_power_kw for r in got] == [float(i) for i in range(count)]


@pytest.mark.parametrize("count", [1001, 5000])
def test_too_many_readings(count: int) -> None:
    error = reject(encode([reading()] * count))
    assert error.code is PowerErrorCode.TOO_MANY
    assert str(count) in error.detail


def test_too_many_wins_over_schema_errors_in_items() -> None:
    assert reject(encode([{"bad": True}] * 1001)).code is PowerErrorCode.TOO_MANY


def test_empty_array() -> None:
    assert reject(b"[]").code is PowerErrorCode.EMPTY
    assert reject(b" [ \n ] ").code is PowerErrorCode.EMPTY


def test_batch_error_path_names_index_and_field() -> None:
    value = [reading(), reading(), reading(ts="2026-11-21T08:00:00")]
    assert schema_detail(value) == (
        "[2].ts: timestamp needs a UTC offset such as Z or +08:00 (got '2026-11-21T08:00:00')"
    )


@pytest.mark.parametrize("item", [152.4, "x", None, [reading()], True])
def test_batch_items_must_be_objects(item: Any) -> None:
    assert schema_detail([reading(), item]).startswith("[1]: expected a reading object")


def test_detail_lists_at_most_five_errors() -> None:
    value = [{"meter": "", "ts": 1, "p_kw": "x", "i_a": [1, 2], "e_kwh": -1, "switch": 1}] * 2
    detail = schema_detail(value)
    parts = detail.split("; ")
    assert len(parts) == 6
    assert parts[-1] == "and 7 more"
    assert all(p.startswith("[0].") for p in parts[:5])


# -- payload shape -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"42", b'"x"', b"null", b"true", b"NaN", b" -1.5 "])
def test_json_that_is_not_a_reading(payload: bytes) -> None:
    error = reject(payload)
    assert error.code is PowerErrorCode.SCHEMA_ERROR
    assert error.detail.startswith("payload: ")


@pytest.mark.parametrize(
    "payload",
    [
        encode(FULL) + b" x",  # trailing garbage
        encode(FULL) + encode(FULL),  # two values
        encode(FULL)[:-1],  # truncated
        encode([FULL])[:-1],
        b'{"meter": "M", "ts": "2026-11-21T08:00:00Z", "p_kw": 1,}',
        b"{'meter': 'M'}",
        b'{"p_kw": 01}',
        b'{"meter": "\\ud800", "ts": "2026-11-21T08:00:00Z", "p_kw": 1}',  # lone surrogate
        b"\xef\xbb\xbf\xef\xbb\xbf" + encode(FULL),  # a second BOM is a character
        b"nul",
        b"hello",
        b"[" * 10_000 + b"]" * 10_000,
        b'{"p_kw": 1' + b"0" * 5000 + b"}",
        b"\x00",
    ],
)
def test_bad_json(payload: bytes) -> None:
    error = reject(payload)
    assert error.code is PowerErrorCode.BAD_JSON
    assert error.detail


@pytest.mark.parametrize("payload", [b"", b" ", b"\r\n\t ", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"])
def test_empty_payload(payload: bytes) -> None:
    assert reject(payload).code is PowerErrorCode.EMPTY


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        b"\xff" + encode(FULL),
        encode(FULL).replace(b"E001-M01", b"E001-\xc3"),
        '{"meter": "一号电表", "ts": "2026-11-21T08:00:00Z", "p_kw": 1}'.encode("gbk"),
        b'{"meter": "\xed\xa0\x80"}',  # UTF-8-encoded surrogate
        b'{"meter": "\xc0\xaf"}',  # overlong encoding
        b"\xef\xbb",  # truncated BOM
    ],
)
def test_not_utf8(payload: bytes) -> None:
    error = reject(payload)
    assert error.code is PowerErrorCode.NOT_UTF8
    assert "byte" in error.detail


def test_decode_error_is_a_value_error_carrying_code_and_detail() -> None:
    error = reject(b"")
    assert isinstance(error, ValueError)
    assert str(error) == f"empty: {error.detail}"


def test_error_codes_are_stable() -> None:
    assert {c.name: c.value for c in PowerErrorCode} == {
        "NOT_UTF8": "not_utf8",
        "BAD_JSON": "bad_json",
        "EMPTY": "empty",
        "SCHEMA_ERROR": "schema_error",
        "METER_MISMATCH": "meter_mismatch",
        "TOO_MANY": "too_many",
    }
    assert set(DESCRIPTIONS) == set(PowerErrorCode)
    assert all(d and "\n" not in d for d in DESCRIPTIONS.values())


# -- the model ---------------------------------------------------------------------------


def test_model_is_frozen_and_forbids_extra_keys() -> None:
    model = MeterReading.model_validate_json(encode(FULL))
    with pytest.raises(ValidationError):
        model.p_kw = 3.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        MeterReading.model_validate({**FULL, "extra": 1})


def test_model_accepts_aware_datetimes_from_python() -> None:
    when = datetime(2026, 11, 21, tzinfo=UTC)
    assert MeterReading(ts=when, p_kw=1.0).ts == when
    with pytest.raises(ValidationError):
        MeterReading(ts=datetime(2026, 11, 21), p_kw=1.0)


# -- topics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "prefix", "expected"),
    [
        ("power/E001-M01", None, "E001-M01"),
        ("power/一号电表", None, "一号电表"),
        ("power/", None, None),
        ("power/a/b", None, None),
        ("power", None, None),
        ("hj212/E001-M01", None, None),
        ("Power/E001-M01", None, None),
        ("xpower/E001-M01", None, None),
        ("power/E 01", None, None),
        ("power/" + "E" * 65, None, None),
        ("site1/power/E001-M01", "site1/power/", "E001-M01"),
        ("site1/power/E001-M01", "site1/power", "E001-M01"),
        ("site1/powerE001", "site1/power", None),
        ("power/E001-M01", "site1/power/", None),
        ("E001-M01", "", "E001-M01"),
        ("a/E001-M01", "", None),
    ],
)
def test_meter_from_topic(topic: str, prefix: str | None, expected: str | None) -> None:
    got = meter_from_topic(topic) if prefix is None else meter_from_topic(topic, prefix=prefix)
    assert got == expected


# -- round trip --------------------------------------------------------------------------

# Meter ids drawn from characters the rule allows, including non-ASCII ones.
_METER_CHARS = st.characters(
    exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
    exclude_characters="/+#\ufeff",
)
_FINITE = {"allow_nan": False, "allow_infinity": False}
_readings = st.fixed_dictionaries(
    {
        "meter": st.text(_METER_CHARS, min_size=1, max_size=64),
        "ts": st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from(
                [
                    UTC,
                    CST,
                    timezone(timedelta(hours=-5, minutes=-30)),
                    timezone(timedelta(hours=14)),
                ]
            ),
        ),
        "p_kw": st.one_of(st.floats(-1e6, 1e6, **_FINITE), st.integers(-1_000_000, 1_000_000)),
    },
    optional={
        "i_a": st.one_of(
            st.none(),
            st.lists(st.floats(0, 1e5, **_FINITE), min_size=1, max_size=1),
            st.lists(st.floats(0, 1e5, **_FINITE), min_size=3, max_size=3),
        ),
        "e_kwh": st.one_of(st.none(), st.floats(0, 1e18, **_FINITE), st.integers(0, 10**15)),
        "switch": st.sampled_from(["on", "off", None]),
    },
)


def _wire(value: dict[str, Any]) -> dict[str, Any]:
    return {**value, "ts": value["ts"].isoformat()}


@settings(max_examples=300, deadline=None)
@given(st.one_of(_readings.map(lambda r: [r]), st.lists(_readings, min_size=1, max_size=20)))
def test_valid_readings_round_trip(values: list[dict[str, Any]]) -> None:
    single = len(values) == 1
    payload = json.dumps(_wire(values[0]) if single else [_wire(v) for v in values]).encode()
    got = decode_power(payload)
    assert len(got) == len(values)
    for value, decoded in zip(values, got, strict=True):
        assert decoded.meter_id == value["meter"]
        assert decoded.ts == value["ts"]
        assert decoded.ts.utcoffset() == value["ts"].utcoffset()
        assert decoded.active_power_kw == value["p_kw"]
        assert isinstance(decoded.active_power_kw, float)
        currents = value.get("i_a")
        assert decoded.current_a == (None if currents is None else tuple(currents))
        assert decoded.energy_kwh == value.get("e_kwh")
        switch = value.get("switch")
        assert decoded.switch_on == (None if switch is None else switch == "on")
        assert not math.isnan(decoded.active_power_kw)
