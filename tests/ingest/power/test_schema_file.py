"""The committed JSON Schema, the documented examples and the docs agree with the decoder.

The repository has no JSON Schema library, so a small validator for exactly the keywords the
schema uses is defined here; it refuses any other keyword, so the schema cannot grow rules
this test would silently skip.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.power import (
    DESCRIPTIONS,
    MAX_READINGS,
    PowerDecodeError,
    PowerErrorCode,
    decode_power,
    json_schema,
    schema_text,
)

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_FILE = ROOT / "docs" / "schemas" / "power-reading.schema.json"
EXAMPLES = ROOT / "docs" / "examples" / "power"
DOC = ROOT / "docs" / "power-telemetry.md"
TOPIC_METER = "E001-M01"

VALID = sorted(EXAMPLES.glob("valid-*.json"))
INVALID = sorted(EXAMPLES.glob("invalid-*.json"))
_INVALID_NAME = re.compile(r"invalid-(?P<code>[a-z_0-9]+)-\d+\.json")


def topic_meter_for(path: Path) -> str | None:
    """The naming convention in docs/power-telemetry.md, section Examples."""
    return TOPIC_METER if "topic" in path.name or "meter_mismatch" in path.name else None


# -- a minimal JSON Schema (2020-12) validator -------------------------------------------

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "examples", "format"}
_TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _ecma_search(pattern: str, text: str) -> bool:
    # ECMAScript's '$' (no multiline flag) matches only at the very end; Python's also
    # matches before a final newline.
    if pattern.endswith("$"):
        pattern = pattern[:-1] + r"\Z"
    return re.search(pattern, text) is not None


def valid(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    checks: list[bool] = []
    for key, arg in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "$ref":
            assert arg.startswith("#/$defs/")
            checks.append(valid(instance, root["$defs"][arg.removeprefix("#/$defs/")], root))
        elif key == "type":
            names = arg if isinstance(arg, list) else [arg]
            checks.append(any(_TYPES[name](instance) for name in names))
        elif key == "enum":
            checks.append(any(type(instance) is type(v) and instance == v for v in arg))
        elif key == "oneOf":
            checks.append(sum(valid(instance, s, root) for s in arg) == 1)
        elif key == "anyOf":
            checks.append(any(valid(instance, s, root) for s in arg))
        elif key in ("minimum", "maximum"):
            if _TYPES["number"](instance):
                checks.append(instance >= arg if key == "minimum" else instance <= arg)
        elif key in ("minLength", "maxLength", "pattern"):
            if isinstance(instance, str):
                if key == "pattern":
                    checks.append(_ecma_search(arg, instance))
                else:
                    n = len(instance)  # code points, as JSON Schema counts
                    checks.append(n >= arg if key == "minLength" else n <= arg)
        elif key in ("minItems", "maxItems", "items"):
            if isinstance(instance, list):
                if key == "items":
                    checks.append(all(valid(item, arg, root) for item in instance))
                else:
                    n = len(instance)
                    checks.append(n >= arg if key == "minItems" else n <= arg)
        elif key in ("required", "properties", "additionalProperties"):
            if isinstance(instance, dict):
                if key == "required":
                    checks.append(all(name in instance for name in arg))
                elif key == "properties":
                    checks.append(
                        all(valid(instance[k], s, root) for k, s in arg.items() if k in instance)
                    )
                else:
                    assert arg is False
                    checks.append(set(instance) <= set(schema.get("properties", {})))
        else:
            raise AssertionError(f"the test validator does not know keyword {key!r}")
        if checks and not checks[-1]:
            return False
    return True


def schema_accepts(instance: Any) -> bool:
    schema = json_schema()
    return valid(instance, schema, schema)


def strict_json(raw: bytes) -> Any:
    """json.loads without Python's NaN/Infinity extension (they are not JSON)."""

    def refuse(name: str) -> Any:
        raise ValueError(name)

    return json.loads(raw.decode("utf-8-sig"), parse_constant=refuse)


def decodes(raw: bytes, topic_meter: str | None = None) -> bool:
    try:
        decode_power(raw, topic_meter)
    except PowerDecodeError:
        return False
    return True


# -- the committed files -----------------------------------------------------------------


def test_committed_schema_file_is_generated_from_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "docs/schemas/power-reading.schema.json is stale: regenerate it as "
        "docs/power-telemetry.md (section JSON Schema) says"
    )
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == json_schema()


def test_schema_header() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://nonsite.dev/schemas/power-reading.schema.json"
    assert schema["title"]
    assert schema["description"]
    assert len(schema["examples"]) >= 3


def test_json_schema_returns_a_fresh_document() -> None:
    first = json_schema()
    first["examples"][0]["p_kw"] = "changed"
    first["$defs"]["reading"]["required"].append("x")
    assert json_schema()["examples"][0]["p_kw"] != "changed"
    assert "x" not in json_schema()["$defs"]["reading"]["required"]


@pytest.mark.parametrize("index", range(3))
def test_schema_examples_decode_and_validate(index: int) -> None:
    example = json_schema()["examples"][index]
    assert schema_accepts(example)
    # the minimal example relies on the topic for its meter; the others name theirs
    topic = TOPIC_METER if isinstance(example, dict) and "meter" not in example else None
    assert decode_power(json.dumps(example).encode(), topic)


def test_examples_exist_for_every_code() -> None:
    assert len(VALID) >= 3
    codes = {_INVALID_NAME.fullmatch(p.name).group("code") for p in INVALID}  # type: ignore[union-attr]
    assert codes == {c.value for c in PowerErrorCode}


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_decodes_and_matches_the_schema(path: Path) -> None:
    raw = path.read_bytes()
    readings = decode_power(raw, topic_meter_for(path))
    value = strict_json(raw)
    assert len(readings) == (len(value) if isinstance(value, list) else 1)
    assert schema_accepts(value)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_is_rejected_with_the_named_code(path: Path) -> None:
    match = _INVALID_NAME.fullmatch(path.name)
    assert match, f"{path.name} does not follow invalid-{{code}}-{{n}}.json"
    expected = PowerErrorCode(match.group("code"))
    with pytest.raises(PowerDecodeError) as info:
        decode_power(path.read_bytes(), topic_meter_for(path))
    assert info.value.code is expected, info.value.detail


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_against_the_schema(path: Path) -> None:
    code = PowerErrorCode(_INVALID_NAME.fullmatch(path.name).group("code"))  # type: ignore[union-attr]
    try:
        value = strict_json(path.read_bytes())
    except ValueError:  # not UTF-8, not strict JSON (NaN), or nothing at all: no verdict
        assert code is not PowerErrorCode.METER_MISMATCH
        return
    # The schema cannot see the topic, so a mismatching meter is schema-valid.
    assert schema_accepts(value) is (code is PowerErrorCode.METER_MISMATCH)


def test_too_many_example_is_just_over_the_limit() -> None:
    value = strict_json((EXAMPLES / "invalid-too_many-1.json").read_bytes())
    assert len(value) == MAX_READINGS + 1


# -- schema and decoder agree on generated readings --------------------------------------

_CST = timezone(timedelta(hours=8))
_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-2_000_000, 2_000_000),
    st.sampled_from([0, -0.0, 1e6, -1e6, 1e6 + 0.001, 1e5, 1e5 + 0.001, -0.001]),
    st.booleans(),
    st.just("1"),
)
_timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, _CST]),
    ).map(datetime.isoformat),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        datetime.isoformat  # naive
    ),
    st.sampled_from(
        [
            "2026-11-21T08:00:00z",
            "2026-11-21 08:00:00+08:00",
            "2026-11-21T08:00:00+0800",
            "2026-11-21T08:00Z",
            "1763683200",
            "2026-11-21T08:00:00Z\n",
            "2026-11-21T08:00:00.1234567890Z",
        ]
    ),
    st.integers(0, 2_000_000_000),
)
_meters = st.one_of(
    st.text(min_size=0, max_size=70),
    st.sampled_from(["E001-M01", "E" * 64, "E" * 65, "a/b", "a b", "a\n", "a\u3000", "a\ufeff"]),
    st.none(),
    st.integers(),
)
_valid_reading = st.fixed_dictionaries(
    {
        "meter": st.text(
            st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
            min_size=1,
            max_size=64,
        ).filter(lambda m: not set(m) & set("/+#\ufeff")),
        "ts": st.datetimes(timezones=st.just(_CST), min_value=datetime(1, 1, 2)).map(
            datetime.isoformat
        ),
        "p_kw": st.floats(-1e6, 1e6),
    },
    optional={
        "i_a": st.lists(st.floats(0, 1e5), min_size=3, max_size=3),
        "e_kwh": st.floats(0, 1e9),
        "switch": st.sampled_from(["on", "off"]),
    },
)
# Values near and across each field's limits, valid and invalid; "-x" deletes field x.
_edits: dict[str, st.SearchStrategy[Any]] = {
    "meter": _meters,
    "ts": _timestamps,
    "p_kw": _numbers,
    "i_a": st.one_of(st.none(), st.lists(_numbers, max_size=4), _numbers),
    "e_kwh": st.one_of(st.none(), _numbers),
    "switch": st.sampled_from(["on", "off", None, "ON", 1, True]),
    "pkw": _numbers,
    "-ts": st.none(),
    "-p_kw": st.none(),
    "-meter": st.none(),
}


@st.composite
def _readings(draw: st.DrawFn) -> dict[str, Any]:
    value = draw(_valid_reading)
    for key in draw(st.lists(st.sampled_from(sorted(_edits)), max_size=2)):
        edit = draw(_edits[key])
        if key.startswith("-"):
            value.pop(key[1:], None)
        else:
            value[key] = edit
    return value


@settings(max_examples=1000, deadline=None)
@given(st.one_of(_readings(), st.lists(_readings(), max_size=3), _numbers, st.none()))
def test_decoder_accepts_exactly_what_the_schema_accepts(value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    has_meters = all(isinstance(i, dict) and i.get("meter") is not None for i in items)
    expected = schema_accepts(value) and has_meters  # the rule the schema cannot express
    assert decodes(json.dumps(value, ensure_ascii=False).encode()) is expected


# -- the docs ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(PowerErrorCode))
def test_doc_lists_every_error_code_with_its_description(code: PowerErrorCode) -> None:
    assert f"| `{code.value}` | {DESCRIPTIONS[code]} |" in DOC.read_text(encoding="utf-8")


def test_doc_has_the_hj212_power_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "## HJ 212 power data (ST=44) and running states (CN 2021)" in text
    for code in ("d20105", "d20205", "d20305", "d20405", "d30106", "d30406", "p99101"):
        assert code in text
