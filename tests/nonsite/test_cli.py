"""The ``nonsite`` command line, run as a real process (``python -m nonsite``)."""

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.store import DeadLetter, record_batch
from nonsite.db import make_engine, migrate
from tests.ingest.hj212.frames import SEG_2011, packet
from tests.service_process import run_nonsite as nonsite

EXAMPLE = Path(__file__).parents[2] / "deploy" / "nonsite.example.toml"


def lines(result: subprocess.CompletedProcess[bytes]) -> list[dict]:
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_decode_contract_from_stdin():
    good = packet(SEG_2011).rstrip(b"\r\n")
    bad_crc = packet(SEG_2011, crc="0000").rstrip(b"\r\n")
    modbus = packet(SEG_2011, modbus=True).rstrip(b"\r\n")
    bad_len = packet(SEG_2011, length=10).rstrip(b"\r\n")
    out = lines(nonsite("decode", stdin=b"\n".join([good, b"", bad_crc, modbus, bad_len]) + b"\n"))
    assert [o["ok"] for o in out] == [True, False, False, False]  # the blank line carries no frame
    first = out[0]
    assert first["mn"] == "010000A8900016F000169DC0"
    assert (first["st"], first["cn"], first["qn"], first["version"]) == (
        "31",
        "2011",
        "20261121080000123",
        "2017",
    )
    assert first["data_time"] == "2026-11-21T08:00:00+08:00"
    assert first["cp"]["a21026"] == {"Rtd": 12.3, "Flag": "N"}
    assert (out[1]["error"], out[3]["error"]) == ("crc_mismatch", "length_mismatch")
    assert out[2]["error"] == "crc_modbus"
    assert out[2]["modbus"] is True
    assert all(o["detail"] for o in out[1:])


def test_decode_file_accepting_modbus_and_several_frames_on_one_line(tmp_path):
    f = tmp_path / "frames.txt"
    f.write_bytes(packet(SEG_2011, modbus=True) + packet(SEG_2011, tail="") + packet(SEG_2011))
    out = lines(nonsite("decode", str(f), "--accept-modbus"))
    assert [o["ok"] for o in out] == [True, True, True]
    assert out[0]["modbus"] is True
    assert out[0]["crc_variant"] == "modbus"


def test_decode_keeps_chinese_text_readable():
    seg = SEG_2011.replace("CN=2011", "CN=3020").replace("CP=&&", "CP=&&i11001-Info=//清洗管路//;")
    [out] = lines(nonsite("decode", stdin=packet(seg)))
    assert out["cp"]["i11001"] == {"Info": "清洗管路"}


def test_decode_accepts_a_command_frame_without_a_data_time():
    # A vendor's parameter query as captured in the field: DataTime empty, CRC valid (issue 18).
    seg = "QN=20261121080000000;ST=91;CN=5015;PW=123456;MN=M1;Flag=4;CP=&&DataTime=&&"
    [out] = lines(nonsite("decode", stdin=packet(seg)))
    assert out["ok"] is True
    assert out["cn"] == "5015"
    assert "data_time" not in out or out["data_time"] is None


def test_check_config_ok_and_errors(tmp_path):
    ok = nonsite("check-config", str(EXAMPLE))
    assert ok.returncode == 0
    assert b"OK: 6 enterprises" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[enterprises]]\nid = "E1"\nname = "x"\n[[enterprises.outlets]]\nid = "o"\nkind = "gas"\n'
    )
    result = nonsite("check-config", str(bad))
    assert result.returncode == 2
    message = result.stderr.decode()
    assert str(bad) in message
    assert 'enterprises[0] (id "E1").outlets[0] (id "o").mn: Field required' in message


def seed_data_dir(data_dir: Path) -> None:
    archive = RawArchive(data_dir / "archive.sqlite3")
    t = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    archive.append(
        [
            IncomingMessage(
                to_us(t), "hj212/A", packet(SEG_2011) + packet(SEG_2011.replace("123;", "124;"))
            ),
            IncomingMessage(
                to_us(t.replace(hour=2)),
                "power/M1",
                b'{\n  "ts": "2026-11-21T08:00:00+08:00",\n  "p_kw": 1\n}',
            ),
            IncomingMessage(to_us(t.replace(hour=3)), "hj212/B", b"\xff\xfe not utf8"),
        ]
    )
    engine = make_engine(f"sqlite:///{data_dir / 'nonsite.db'}")
    migrate(engine)
    with engine.begin() as conn:
        record_batch(
            conn,
            "ingest",
            3,
            [DeadLetter(3, t.replace(hour=3), "hj212/B", "no_header", "junk", b"\xff\xfe")],
        )


def test_archive_export_prints_frames_one_per_line(tmp_path):
    data_dir = tmp_path / "data"
    seed_data_dir(data_dir)
    env = {"NONSITE_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    raw = nonsite("archive", "export", env=env)
    assert raw.returncode == 0, raw.stderr
    out = raw.stdout.splitlines()
    assert out[0] == packet(SEG_2011).rstrip(b"\r\n")
    assert len(out) == 4  # two frames of one message, one compacted JSON line, one raw line
    assert out[2] == b'{"ts":"2026-11-21T08:00:00+08:00","p_kw":1}'
    # Exported frames feed straight back into decode.
    decoded = lines(nonsite("decode", stdin=b"\n".join(out[:2])))
    assert [d["qn"] for d in decoded] == ["20261121080000123", "20261121080000124"]
    # Time window (China time) and JSON records with metadata.
    window = nonsite(
        "archive",
        "export",
        "--since",
        "2026-11-21T10:00",
        "--until",
        "2026-11-21T11:00",
        "--format",
        "json",
        env=env,
    )
    [record] = lines(window)
    assert record["topic"] == "power/M1"
    assert record["received_at"].startswith("2026-11-21T10:30:00")
    [binary] = lines(
        nonsite("archive", "export", "--topic-prefix", "hj212/B", "--format", "json", env=env)
    )
    assert "payload_base64" in binary


def test_archive_export_without_an_archive_says_where_it_looked(tmp_path):
    result = nonsite("archive", "export", env={"NONSITE_DATA_DIR": str(tmp_path / "none")})
    assert result.returncode != 0
    assert b"no archive at" in result.stderr


def test_dead_letters_listing(tmp_path):
    data_dir = tmp_path / "data"
    seed_data_dir(data_dir)
    env = {"NONSITE_DATA_DIR": str(data_dir)}
    table = nonsite("dead-letters", env=env)
    assert table.returncode == 0, table.stderr
    assert b"no_header" in table.stdout
    [record] = lines(nonsite("dead-letters", "--json", env=env))
    assert (record["reason"], record["archive_seq"], record["payload_base64"]) == (
        "no_header",
        3,
        "//4=",
    )
    assert nonsite("dead-letters", "--counts", env=env).stdout.split() == [b"1", b"no_header"]
    assert lines(nonsite("dead-letters", "--json", "--reason", "crc_mismatch", env=env)) == []


def test_bad_time_argument_is_a_clear_usage_error(tmp_path):
    result = nonsite(
        "archive", "export", "--since", "yesterday", env={"NONSITE_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2
    assert b"not an ISO 8601 time" in result.stderr


def test_unreadable_input_is_one_clear_line():
    result = nonsite("decode", "/no/such/file")
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "nonsite: /no/such/file: No such file or directory"


def test_serve_on_a_taken_port_fails_fast_naming_the_setting(tmp_path):
    import socket

    from tests.service_process import write_config

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    config = write_config(
        tmp_path / "n.toml", broker_url="mqtt://127.0.0.1:1", data_dir=tmp_path / "d", mns=[]
    )
    text = config.read_text()
    start = text.index("http_listen")
    line_end = text.index("\n", start)
    config.write_text(text[:start] + f'http_listen = "127.0.0.1:{port}"' + text[line_end:])
    result = nonsite("serve", "--config", str(config))
    taken.close()
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (service.http_listen)" in result.stderr.decode()


# Commands that only read: none may create an empty database where it looked, each says in one
# line where it looked and how to point at the right one, exit status 2.
READERS = [
    ("cases", "list"),
    ("cases", "show", "1"),
    ("cases", "export", "1"),
    ("cases", "act", "1", "comment", "--as", "monitor:王", "--note", "x"),
    ("silences", "list"),
    ("dead-letters",),
    ("dead-letters", "--counts"),
    ("findings",),
    ("users", "list"),
    ("users", "events"),
    ("users", "token", "list"),
    ("archive", "export"),
    ("archive", "prune"),
]


def test_commands_that_read_refuse_a_data_directory_with_no_data(tmp_path, monkeypatch, capsys):
    from nonsite.cli import main  # in this process: thirteen interpreters would take 20 s

    empty = tmp_path / "data"
    monkeypatch.delenv("NONSITE_CONFIG", raising=False)
    monkeypatch.delenv("NONSITE_DB_URL", raising=False)
    monkeypatch.setenv("NONSITE_DATA_DIR", str(empty))
    for command in READERS:
        code = main(list(command))
        said = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (command, said)
        assert len(said) == 1, (command, said)
        assert str(empty) in said[0] and "NONSITE_CONFIG" in said[0], (command, said)
        assert not empty.exists() or not any(empty.iterdir()), (command, list(empty.iterdir()))
    # The same through the installed entry point, as a user runs it.
    result = nonsite("cases", "list", env={"NONSITE_DATA_DIR": str(empty), "PATH": "/usr/bin"})
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr


def test_the_refusal_names_a_demos_configuration_when_there_is_one(tmp_path):
    demo = tmp_path / "demo-data"
    demo.mkdir()
    (demo / "nonsite.toml").write_text("# nonsite demo: ...\n")
    result = subprocess.run(
        [sys.executable, "-m", "nonsite", "cases", "list"],
        capture_output=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "NONSITE_CONFIG=demo-data/nonsite.toml" in result.stderr.decode()
    assert not (tmp_path / "data").exists()


def test_serve_and_db_upgrade_still_create_the_database(tmp_path):
    env = {"NONSITE_DATA_DIR": str(tmp_path / "data")}
    result = nonsite("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "nonsite.db").is_file()
    listed = nonsite("cases", "list", env=env)  # and then the readers read it
    assert listed.returncode == 0, listed.stderr


def test_replay_of_a_missing_archive_is_one_line(tmp_path):
    result = nonsite("replay", "--config", str(EXAMPLE), str(tmp_path / "archive.sqlite3"))
    said = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2, said
    assert len(said) == 1 and str(tmp_path / "archive.sqlite3") in said[0], said
    assert not (tmp_path / "archive.sqlite3").exists()
