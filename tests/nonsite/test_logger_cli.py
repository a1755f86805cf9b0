"""``nonsite logger``: 补遗, 校时 and any command from the server's command line, refused with
a reason, and the audit list (the service sends them: tests/nonsite/test_logger_commands.py)."""

from __future__ import annotations

from pathlib import Path

from tests.nonsite.test_cli import lines, nonsite


def config(tmp_path: Path) -> str:
    path = tmp_path / "n.toml"
    path.write_text(
        f"""
[service]
data_dir = "{tmp_path / "data"}"
[[enterprises]]
id = "E1"
name = "测试企业"
[[enterprises.outlets]]
id = "DA001"
kind = "gas"
mn = "MN-CLI-1"
pw = "Cli-7710"
"""
    )
    return str(path)


def test_recall_time_check_and_send_are_recorded_and_listed(tmp_path):
    cfg = config(tmp_path)
    [recall] = lines(
        nonsite(
            "logger", "recall", "MN-CLI-1", "--from", "2026-12-05T08:00", "--to",
            "2026-12-05T09:59:59", "--cn", "2051", "--as", "值班员张三", "--reason", "补 8、9 点",
            "--config", cfg, "--json",
        )
    )  # fmt: skip
    assert (recall["kind"], recall["cn"], recall["status"]) == ("recall", "2051", "requested")
    assert recall["requested_by"] == "值班员张三" and recall["reason"] == "补 8、9 点"
    assert recall["params"]["BeginTime"] == "2026-12-05T00:00:00+00:00"  # naive = China time
    check = nonsite("logger", "time-check", "MN-CLI-1", "--as", "张三", "--config", cfg)
    assert check.returncode == 0, check.stderr.decode()
    assert "校时(读)" in check.stdout.decode() and "待发送" in check.stdout.decode()
    sent = nonsite(
        "logger", "send", "MN-CLI-1", "--cn", "3020", "--cp", "PolId=a21026",
        "--reason", "读取参数", "--as", "张三", "--config", cfg,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr.decode()
    listed = lines(nonsite("logger", "commands", "MN-CLI-1", "--json", "--config", cfg))
    assert [c["kind"] for c in listed] == ["command", "time_get", "recall"]  # newest first


def test_refusals_exit_3_with_the_reason(tmp_path):
    cfg = config(tmp_path)
    unknown = nonsite(
        "logger", "recall", "NOPE", "--from", "2026-12-05T08:00", "--to", "2026-12-05T09:00",
        "--as", "张三", "--config", cfg,
    )  # fmt: skip
    assert unknown.returncode == 3
    assert "error: unknown_mn:" in unknown.stderr.decode()
    backwards = nonsite(
        "logger", "recall", "MN-CLI-1", "--from", "2026-12-05T08:00", "--to", "2026-12-05T07:00",
        "--as", "张三", "--config", cfg,
    )  # fmt: skip
    assert backwards.returncode == 3 and "bad_time" in backwards.stderr.decode()
    no_reason = nonsite(
        "logger", "send", "MN-CLI-1", "--cn", "3020", "--as", "张三", "--config", cfg
    )
    assert no_reason.returncode == 2  # argparse: --reason is required
