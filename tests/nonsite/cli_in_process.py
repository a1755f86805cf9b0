"""``nonsite`` commands run in the test's own process, and the configuration they start from."""

from __future__ import annotations

import pytest

from nonsite.cli import main

# One brigade and its enterprise with one gas outlet; ``data_dir`` to be filled in.
CONFIG = """\
[service]
data_dir = "{data_dir}"

[[brigades]]
id = "B1"
name = "第一执法大队"

[[enterprises]]
id = "E1"
name = "华能示范电厂"
brigade = "B1"
[[enterprises.outlets]]
id = "DA001"
name = "1号锅炉"
kind = "gas"
mn = "010000A8900016F000169DC0"
pw = "123456"
"""

Result = tuple[int, str, str]  # exit code, standard output, standard error


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """``nonsite`` with ``argv``, in this process: what it exits with and writes."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors and --help
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def ok(result: Result) -> str:
    """The output of a command that succeeded."""
    code, out, err = result
    assert code == 0, err
    return out


def usage(result: Result) -> str:
    """The message of a command refused for its usage (exit code 2, nothing on stdout)."""
    code, out, err = result
    assert code == 2, (out, err)
    assert out == ""
    return err
