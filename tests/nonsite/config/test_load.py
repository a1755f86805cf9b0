from pathlib import Path

import pytest

from nonsite.config import ConfigError, load_config

EXAMPLE = Path(__file__).parents[3] / "deploy" / "nonsite.example.toml"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "nonsite.toml"
    path.write_text(text, encoding="utf-8")
    return path


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
  [[enterprises.outlets]]
  id = "DA001"
  kind = "smoke"
  mn = "M1"
  [[enterprises.outlets]]
  id = "DA002"
  kind = "gas"
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
  [[enterprises.outlets]]
  id = "DA001"
  kind = "gas"
  mn = "SAME"
  [[enterprises.meters]]
  id = "M1"
  role = "production"
[[enterprises]]
id = "E1"
name = "乙"
  [[enterprises.outlets]]
  id = "DA001"
  kind = "water"
  mn = "SAME"
  [[enterprises.meters]]
  id = "M1"
  role = "control"
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
        ('[[mqtt.subscriptions]]\nkind = "csv"\nfilter = "x/#"\n', "mqtt.subscriptions[0].kind"),
    ],
)
def test_field_rules(tmp_path, text, entry):
    assert [e for e, _ in problems(write(tmp_path, text))] == [entry]
