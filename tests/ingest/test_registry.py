import pytest

from ingest.registry import Meter, MeterLogger, Outlet, Registry

CEMS, POWER = "MN-CEMS", "MN-POWER"


def registry(**options: bool | int) -> Registry:
    return Registry(
        [Outlet("E1", "DA001", CEMS, "123456", "gas")],
        [
            Meter("E1", "FAN", "control", mn=CEMS, code="SB1"),
            Meter("E1", "LINE", "production", mn=POWER, code="d20405"),
            Meter("E1", "JSON", "production"),
        ],
        **options,  # type: ignore[arg-type]
    )


def test_meters_are_found_by_mn_and_code():
    reg = registry()
    assert reg.meter_at(CEMS, "SB1") == reg.meter("FAN")
    assert reg.meter_at(POWER, "d20405") == reg.meter("LINE")
    assert reg.meter_at(POWER, "SB1") is None
    assert reg.meter_at("MN-NONE", "SB1") is None
    assert dict(reg.meters_of(POWER) or {}) == {"d20405": reg.meter("LINE")}
    assert reg.meters_of("MN-NONE") is None


def test_an_mn_of_meters_only_is_a_logger_with_the_ingest_defaults():
    reg = registry(accept_modbus_crc=True, max_segment_bytes=2048)
    assert reg.meter_logger(POWER) == MeterLogger(POWER, True, 2048)
    assert reg.meter_logger(CEMS) is None  # an outlet's logger keeps the outlet's rules
    assert reg.is_logger(POWER) and reg.is_logger(CEMS)
    assert not reg.is_logger("MN-NONE")


def test_an_mn_and_code_registered_twice_is_refused():
    twice = [
        Meter("E1", "A", "control", mn=POWER, code="SB1"),
        Meter("E1", "B", "control", mn=POWER, code="SB1"),
    ]
    with pytest.raises(ValueError, match="code 'SB1' registered twice"):
        Registry([], twice)
