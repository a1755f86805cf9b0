import re
import subprocess
import sys
from pathlib import Path

import pytest

from nonsite.config import ConfigError, load_config
from nonsite.wiring import build_registry

EXAMPLE = Path(__file__).parents[3] / "deploy" / "nonsite.example.toml"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "nonsite.toml"
    path.write_text(text, encoding="utf-8")
    return path


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nonsite", "check-config", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def problems(path: Path, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=env or {})
    assert exc.value.source == str(path)
    assert str(path) in exc.value.render()
    return [(i.entry, i.problem) for i in exc.value.issues]


def test_example_configuration_is_valid_and_realistic():
    config = load_config(EXAMPLE, env={})
    assert len(config.enterprises) >= 5
    assert {e.industry for e in config.enterprises} >= {"thermal_power", "msw_incineration"}
    assert sum(len(e.meters) for e in config.enterprises) >= 4
    assert config.mqtt.url == ""  # embedded broker by default, so it runs anywhere


def test_errors_name_the_entry_by_index_and_id(tmp_path):
    path = write(
        tmp_path,
        """
[[enterprises]]
id = "E1"
name = "甲"
outlets = [{ id = "DA001", kind = "smoke", mn = "M1" }, { id = "DA002", kind = "gas" }]
""",
    )
    found = problems(path)
    assert (
        'enterprises[0] (id "E1").outlets[0] (id "DA001").kind',
        "Input should be 'gas' or 'water' (got 'smoke')",
    ) in found
    assert ('enterprises[0] (id "E1").outlets[1] (id "DA002").mn', "Field required") in found


def test_unknown_setting_is_an_error_not_a_silent_default(tmp_path):
    found = problems(write(tmp_path, "[archive]\nretention_dayz = 30\n"))
    assert found == [("archive.retention_dayz", "unknown setting (check the spelling)")]


def test_duplicates_across_entries(tmp_path):
    path = write(
        tmp_path,
        """
[[enterprises]]
id = "E1"
name = "甲"
outlets = [{ id = "DA001", kind = "gas", mn = "SAME" }]
meters = [{ id = "M1", role = "production" }]
[[enterprises]]
id = "E1"
name = "乙"
outlets = [{ id = "DA001", kind = "water", mn = "SAME" }]
meters = [{ id = "M1", role = "control" }]
""",
    )
    found = dict(problems(path))
    assert found['enterprises[1] (id "E1").id'].startswith("duplicate enterprise id")
    assert "already used by" in found['enterprises[1] (id "E1").outlets[0] (id "DA001").mn']
    assert "already used by" in found['enterprises[1] (id "E1").meters[0] (id "M1").id']


def test_toml_syntax_and_missing_file(tmp_path):
    [(entry, problem)] = problems(write(tmp_path, "[mqtt\nurl = 1\n"))
    assert entry == "(TOML syntax)"
    assert "line 1" in problem
    [(entry, problem)] = problems(tmp_path / "nope.toml")
    assert entry == "(file)"


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, '[mqtt]\nurl = "mqtt://file:1883"\n[service]\ndata_dir = "from-file"\n')
    env = {
        "NONSITE_MQTT_URL": "mqtts://user:p%40ss@broker.example:8884",
        "NONSITE_DB_URL": "postgresql+psycopg://nonsite@db/nonsite",
        "NONSITE_DATA_DIR": "/var/lib/nonsite",
    }
    config = load_config(path, env=env)
    assert config.mqtt.url == env["NONSITE_MQTT_URL"]
    assert config.database_url() == env["NONSITE_DB_URL"]
    assert config.service.data_dir == Path("/var/lib/nonsite")


def test_bad_environment_value_names_the_variable(tmp_path):
    [(entry, problem)] = problems(write(tmp_path, ""), env={"NONSITE_MQTT_URL": "http://broker"})
    assert entry == "mqtt.url (from environment variable NONSITE_MQTT_URL)"
    assert "mqtt:// or mqtts://" in problem


def test_default_database_is_sqlite_in_the_data_dir(tmp_path):
    config = load_config(write(tmp_path, '[service]\ndata_dir = "d"\n'), env={})
    assert config.database_url() == "sqlite:///d/nonsite.db"


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ('[service]\nhttp_listen = "8080"\n', "service.http_listen"),
        ('[mqtt]\nreply_topic = "replies"\n', "mqtt.reply_topic"),
        ("[mqtt]\nreceive_maximum = 0\n", "mqtt.receive_maximum"),
        ('[archive]\ndurability = "sometimes"\n', "archive.durability"),
        ('[[mqtt.subscriptions]]\nkind = "csv"\nfilter = "x/+"\n', "mqtt.subscriptions[0].kind"),
    ],
)
def test_field_rules(tmp_path, text, entry):
    assert [e for e, _ in problems(write(tmp_path, text))] == [entry]


# An enterprise whose outlet's logger, CEMS-1, may report meters too.
CEMS_1 = """
[[enterprises]]
id = "E1"
name = "甲"
outlets = [{ id = "DA001", kind = "gas", mn = "CEMS-1", pw = "Ce-5521" }]
"""

METERS_FED_BY_LOGGERS = (
    "[ingest]\naccept_modbus_crc = true\n"
    + CEMS_1
    + """meters = [
  # the outlet's own logger: CN 2021 SB1-RS
  { id = "FAN", role = "control", mn = "CEMS-1", code = "SB1" },
  # a power-monitoring logger of its own: ST=44 d20405-Rtd
  { id = "LINE", role = "production", mn = "POWER-1", code = "d20405" },
  { id = "JSON", role = "production" },
]
"""
)


def test_meters_fed_by_hj212_loggers_reach_the_registry(tmp_path):
    config = load_config(write(tmp_path, METERS_FED_BY_LOGGERS), env={})
    registry = build_registry(config)
    assert registry.meter_at("CEMS-1", "SB1") == registry.meter("FAN")
    assert registry.meter_at("POWER-1", "d20405") == registry.meter("LINE")
    assert registry.meter("JSON") is not None
    assert registry.meter_logger("CEMS-1") is None  # the outlet's logger
    logger = registry.meter_logger("POWER-1")
    assert logger is not None and logger.accept_modbus_crc  # the [ingest] default


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ('mn = "POWER-1"', "mn needs code"),
        ('code = "d20405"', "code needs mn"),
    ],
)
def test_mn_and_code_go_together(tmp_path, keys, problem):
    text = '[[enterprises]]\nid = "E1"\nname = "甲"\n[[enterprises.meters]]\nid = "M1"\n'
    text += f'role = "production"\n{keys}\n'
    [(entry, found)] = problems(write(tmp_path, text))
    assert entry == 'enterprises[0] (id "E1").meters[0] (id "M1")'
    assert found.startswith(problem)


def test_a_code_must_be_a_plain_hj212_code(tmp_path):
    text = '[[enterprises]]\nid = "E1"\nname = "甲"\n[[enterprises.meters]]\nid = "M1"\n'
    text += 'role = "production"\nmn = "P1"\ncode = "SB1-RS"\n'
    [(entry, _)] = problems(write(tmp_path, text))
    assert entry == 'enterprises[0] (id "E1").meters[0] (id "M1").code'


DUPLICATE_SOURCES = (
    CEMS_1
    + """meters = [
  { id = "M1", role = "control", mn = "CEMS-1", code = "SB1" },
  { id = "M2", role = "control", mn = "CEMS-1", code = "SB1" },
]
[[enterprises]]
id = "E2"
name = "乙"
meters = [{ id = "M3", role = "production", mn = "CEMS-1", code = "d20405" }]
"""
)


def test_mn_and_code_name_one_meter_and_a_logger_one_enterprise(tmp_path):
    found = problems(write(tmp_path, DUPLICATE_SOURCES))
    assert found == [
        (
            'enterprises[0] (id "E1").meters[1] (id "M2").code',
            "MN 'CEMS-1' code 'SB1' already feeds enterprises[0] (id \"E1\").meters[0] (id \"M1\")",
        ),
        (
            'enterprises[1] (id "E2").meters[0] (id "M3").mn',
            "MN 'CEMS-1' belongs to enterprise 'E1' (enterprises[0] (id \"E1\").outlets[0] "
            '(id "DA001")); a logger reports for one enterprise',
        ),
    ]


def test_check_config_reports_a_duplicate_mn_and_code(tmp_path):
    path = write(tmp_path, DUPLICATE_SOURCES)
    result = check_config(path)
    assert result.returncode == 2
    assert f"{path}: 2 problem(s) in the configuration" in result.stderr
    assert (
        "enterprises[0] (id \"E1\").meters[1] (id \"M2\").code: MN 'CEMS-1' code 'SB1' already "
        'feeds enterprises[0] (id "E1").meters[0] (id "M1")'
    ) in result.stderr


def test_the_examples_commented_hj212_meter_is_valid(tmp_path):
    """deploy/nonsite.example.toml shows a meter fed by an HJ 212 logger as a comment; with
    the comment marks removed it is a valid meter of that enterprise."""
    text = EXAMPLE.read_text(encoding="utf-8")
    block = re.search(r"^  # \[\[enterprises\.meters\]\]\n(?:  # \w+ = .*\n)+", text, re.M)
    assert block is not None
    uncommented = block.group(0).replace("  # ", "  ")
    config = load_config(write(tmp_path, text.replace(block.group(0), uncommented)), env={})
    [meter] = [m for e in config.enterprises for m in e.meters if m.mn is not None]
    assert (meter.id, meter.mn, meter.code) == ("E006-M04", "33010000A8900016F0000601", "d30406")
    assert build_registry(config).meter_logger(meter.mn) is not None


ATTRIBUTION = """
[[gateways]]
id = "GW-1"
mns = ["MN-B", "MN-NOBODY"]
meters = ["M-B", "M-NOBODY"]
[[gateways]]
id = "MN-A"
mns = ["MN-B"]
[[enterprises]]
id = "EA"
name = "甲"
outlets = [{ id = "DA001", kind = "gas", mn = "MN-A" }]
[[enterprises]]
id = "EB"
name = "乙"
outlets = [{ id = "DA001", kind = "gas", mn = "MN-B", pw = "Bb-8812" }]
meters = [{ id = "M-B", role = "production" }]
"""


def test_gateways_speak_for_configured_senders_and_outlets_need_a_pw(tmp_path):
    found = problems(write(tmp_path, ATTRIBUTION))
    assert found == [
        ('gateways[0] (id "GW-1").mns[1]', "MN 'MN-NOBODY' is no outlet's or meter's logger"),
        ('gateways[0] (id "GW-1").meters[1]', "'M-NOBODY' is not a configured meter"),
        (
            'gateways[1] (id "MN-A").id',
            "'MN-A' is also an MN: a gateway's topic would be that sender's",
        ),
        (
            'enterprises[0] (id "EA").outlets[0] (id "DA001").pw',
            'required while [ingest] check_pw is on: the logger\'s PW (访问密码), or "" for a '
            "logger that sends none",
        ),
    ]
    # Without the PW check an outlet may omit pw (the gateway problems remain).
    relaxed = problems(write(tmp_path, "[ingest]\ncheck_pw = false\n" + ATTRIBUTION))
    assert [entry for entry, _ in relaxed] == [entry for entry, _ in found[:3]]


@pytest.mark.parametrize("topic_filter", ["hj212/#", "hj212/+/+", "hj212/all", "$share/g/x/#"])
def test_a_subscription_names_its_sender_with_exactly_one_plus(tmp_path, topic_filter):
    text = f'[[mqtt.subscriptions]]\nkind = "hj212"\nfilter = "{topic_filter}"\n'
    [(entry, problem)] = problems(write(tmp_path, text))
    assert entry == "mqtt.subscriptions[0].filter"
    assert problem.startswith("must have exactly one + level, the sender")


WEAK_PASSWORDS = """
[[enterprises]]
id = "E1"
name = "甲"
outlets = [
  { id = "DA001", kind = "gas", mn = "MN-1", pw = "123456" },
  { id = "DA002", kind = "gas", mn = "MN-2", pw = "" },
  { id = "DA003", kind = "gas", mn = "MN-3", pw = "Same-77" },
  { id = "DA004", kind = "gas", mn = "MN-4", pw = "Same-77" },
  { id = "DA005", kind = "gas", mn = "MN-5", pw = "Own-1234" },
]
"""


def test_check_config_warns_about_default_empty_and_shared_passwords(tmp_path):
    result = check_config(write(tmp_path, WEAK_PASSWORDS))
    assert result.returncode == 0, result.stderr
    warnings = [line.strip() for line in result.stdout.splitlines() if "warning:" in line]
    outlet = 'warning: enterprises[0] (id "E1").outlets[{}] (id "DA00{}").pw: '
    assert warnings == [
        outlet.format(0, 1) + "'123456' is a factory default: set the logger's own",
        outlet.format(1, 2) + "empty: frames without a PW are accepted",
        outlet.format(2, 3) + "shared with 1 other outlet(s): give each its own",
        outlet.format(3, 4) + "shared with 1 other outlet(s): give each its own",
    ]
    off = check_config(write(tmp_path, "[ingest]\ncheck_pw = false\n" + WEAK_PASSWORDS))
    assert "warning: ingest.check_pw: off" in off.stdout


def test_the_example_configuration_gives_each_logger_its_own_password():
    result = check_config(EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stdout


def test_check_config_hides_the_broker_password_and_warns_about_the_gateways_login(tmp_path):
    broker = '[mqtt]\nurl = "mqtt://nonsite:s3cret-Pw@broker:1883"\n'
    result = check_config(write(tmp_path, broker + '[tcp]\nlisten = "0.0.0.0:9212"\n'))
    assert result.returncode == 0, result.stderr
    assert "s3cret-Pw" not in result.stdout
    assert "broker mqtt://nonsite:***@broker:1883; HJ 212 over TCP on 0.0.0.0:9212" in result.stdout
    assert "warning: tcp.mqtt_url: empty: the TCP gateway logs in" in result.stdout
    own = '[tcp]\nlisten = "0.0.0.0:9212"\nmqtt_url = "mqtt://nonsite-gateway:g@broker:1883"\n'
    assert "tcp.mqtt_url" not in check_config(write(tmp_path, broker + own)).stdout


def test_check_config_warns_about_a_cluster_node_without_a_nats_login(tmp_path):
    cluster = '[cluster]\nnats = ["nats://nats-1:4222"]\n'
    result = check_config(write(tmp_path, cluster))
    assert result.returncode == 0, result.stderr
    assert "warning: cluster.nats_user: empty: this node logs in to NATS as nobody" in result.stdout
    login = cluster + 'nats_user = "worker"\nnats_password = "n4ts-Secret"\n'
    result = check_config(write(tmp_path, login))
    assert "cluster.nats_user" not in result.stdout
    assert "n4ts-Secret" not in result.stdout


def test_risk_weights_are_checked_by_name_and_order(tmp_path):
    found = problems(
        write(
            tmp_path,
            """
[risk]
points = { violation = 40, exceedences = 3 }

[[enterprises]]
id = "E1"
name = "甲"
supervision_class = "vip"
""",
        )
    )
    assert [p for e, p in found if e == "risk"] == [
        "points: unknown kind exceedences (known: violation, exceedance_alarm, "
        "exceedance_warning, fraud, data_quality, power, unexplained, rectification_overdue, "
        "rectification_failed, clue, transmission)"
    ], found
    assert (
        'enterprises[0] (id "E1").supervision_class',
        "Input should be 'key', 'special' or 'general' (got 'vip')",
    ) in found
    swapped = problems(write(tmp_path, "[risk]\nyellow_at = 50\nred_at = 40\n"))
    assert swapped == [("risk", "red_at (40.0) must be above yellow_at (50.0)")]
