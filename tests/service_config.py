"""The configuration of a test service, written as TOML lines: its sections and its
enterprises."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from nonsite.embedded_broker import free_port


def service_lines(
    *, broker_url: str, data_dir: Path, client_id: str, db_url: str | None = None
) -> list[str]:
    """The [database] (if ``db_url``), [service] and [mqtt] sections of a test service's
    configuration: a free HTTP port, quick reconnects."""
    lines = ["[database]", f'url = "{db_url}"'] if db_url is not None else []
    return [
        *lines,
        "[service]",
        f'data_dir = "{data_dir}"',
        f'http_listen = "127.0.0.1:{free_port()}"',
        "[mqtt]",
        f'url = "{broker_url}"',
        f'client_id = "{client_id}"',
        "reconnect_min_s = 0.2",
        "reconnect_max_s = 1.0",
    ]


def gas_enterprise(
    enterprise_id: str,
    name: str,
    mn: str,
    pw: str,
    *,
    outlet: str = "DA001",
    settings: Iterable[str] = (),
    outlet_settings: Iterable[str] = ('preset = "thermal_power_coal_boiler"',),
) -> list[str]:
    """An enterprise (with further ``settings`` lines of its own) and its one gas outlet, by
    default a coal-fired boiler with the preset's limits (``outlet_settings``)."""
    return [
        "[[enterprises]]",
        f'id = "{enterprise_id}"',
        f'name = "{name}"',
        *settings,
        "[[enterprises.outlets]]",
        f'id = "{outlet}"',
        'kind = "gas"',
        f'mn = "{mn}"',
        f'pw = "{pw}"',
        *outlet_settings,
    ]


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path
