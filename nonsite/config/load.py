"""Load and validate a configuration file; every error names the file, the entry and the problem."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nonsite.config.model import Config

# Environment variable → (section, key). The environment wins over the file.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "NONSITE_MQTT_URL": ("mqtt", "url"),
    "NONSITE_DB_URL": ("database", "url"),
    "NONSITE_DATA_DIR": ("service", "data_dir"),
    "NONSITE_NATS_USER": ("cluster", "nats_user"),
    "NONSITE_NATS_PASSWORD": ("cluster", "nats_password"),
}


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    entry: str  # e.g. 'enterprises[2] (id "E003").outlets[0].mn', or an environment variable
    problem: str


class ConfigError(Exception):
    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.issues)} problem(s) in the configuration"]
        lines += [f"  {issue.entry}: {issue.problem}" for issue in self.issues]
        return "\n".join(lines)


def _entry_name(data: Any, loc: tuple[int | str, ...]) -> str:
    """A readable path for a pydantic error location, naming list items by their id."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node):
                node = node[key]
                if isinstance(node, Mapping) and isinstance(node.get("id"), str):
                    label += f' (id "{node["id"]}")'
            else:
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + key)
            node = node.get(key) if isinstance(node, Mapping) else None
    return "".join(parts) or "(top level)"


def _duplicates(config: Config) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    seen_enterprise: dict[str, int] = {}
    seen_mn: dict[str, str] = {}
    seen_meter: dict[str, str] = {}
    for i, ent in enumerate(config.enterprises):
        where = f'enterprises[{i}] (id "{ent.id}")'
        if ent.id in seen_enterprise:
            issues.append(
                ConfigIssue(
                    f"{where}.id",
                    f"duplicate enterprise id, also enterprises[{seen_enterprise[ent.id]}]",
                )
            )
        seen_enterprise.setdefault(ent.id, i)
        outlet_ids: set[str] = set()
        for j, outlet in enumerate(ent.outlets):
            at = f'{where}.outlets[{j}] (id "{outlet.id}")'
            if outlet.id in outlet_ids:
                issues.append(ConfigIssue(f"{at}.id", "duplicate outlet id within the enterprise"))
            outlet_ids.add(outlet.id)
            if outlet.mn in seen_mn:
                issues.append(
                    ConfigIssue(
                        f"{at}.mn", f"MN {outlet.mn!r} is already used by {seen_mn[outlet.mn]}"
                    )
                )
            seen_mn.setdefault(outlet.mn, at)
        for j, meter in enumerate(ent.meters):
            at = f'{where}.meters[{j}] (id "{meter.id}")'
            if meter.id in seen_meter:
                issues.append(
                    ConfigIssue(f"{at}.id", f"meter id already used by {seen_meter[meter.id]}")
                )
            seen_meter.setdefault(meter.id, at)
    return issues


def _meter_sources(config: Config) -> list[ConfigIssue]:
    """A meter fed by an HJ 212 logger: each (MN, code) names one meter, and a logger reports
    for one enterprise (a meter on another enterprise's MN is a typo, not a shared logger)."""
    issues: list[ConfigIssue] = []
    mn_owner: dict[str, tuple[str, str]] = {}  # MN → (enterprise id, the entry that set it)
    for i, ent in enumerate(config.enterprises):
        for j, outlet in enumerate(ent.outlets):
            at = f'enterprises[{i}] (id "{ent.id}").outlets[{j}] (id "{outlet.id}")'
            mn_owner.setdefault(outlet.mn, (ent.id, at))
    seen: dict[tuple[str, str], str] = {}
    for i, ent in enumerate(config.enterprises):
        for j, meter in enumerate(ent.meters):
            if meter.mn is None or meter.code is None:
                continue
            at = f'enterprises[{i}] (id "{ent.id}").meters[{j}] (id "{meter.id}")'
            source = (meter.mn, meter.code)
            if source in seen:
                issues.append(
                    ConfigIssue(
                        f"{at}.code",
                        f"MN {meter.mn!r} code {meter.code!r} already feeds {seen[source]}",
                    )
                )
            seen.setdefault(source, at)
            owner, where = mn_owner.setdefault(meter.mn, (ent.id, at))
            if owner != ent.id:
                issues.append(
                    ConfigIssue(
                        f"{at}.mn",
                        f"MN {meter.mn!r} belongs to enterprise {owner!r} ({where}); a logger "
                        "reports for one enterprise",
                    )
                )
    return issues


def _references(config: Config) -> list[ConfigIssue]:
    """Links between entries of one enterprise must name something that exists there."""
    issues: list[ConfigIssue] = []
    for i, ent in enumerate(config.enterprises):
        where = f'enterprises[{i}] (id "{ent.id}")'
        roles = {m.id: m.role for m in ent.meters}
        outlets = {o.id for o in ent.outlets}
        for j, meter in enumerate(ent.meters):
            for k, target in enumerate(meter.serves):
                at = f'{where}.meters[{j}] (id "{meter.id}").serves[{k}]'
                if meter.role != "control":
                    issues.append(
                        ConfigIssue(at, "only a control device serves production devices")
                    )
                elif roles.get(target) != "production":
                    issues.append(
                        ConfigIssue(at, f"{target!r} is not a production meter of this enterprise")
                    )
            for k, target in enumerate(meter.outlets):
                at = f'{where}.meters[{j}] (id "{meter.id}").outlets[{k}]'
                if meter.role != "production":
                    issues.append(ConfigIssue(at, "only a production device emits through outlets"))
                elif target not in outlets:
                    issues.append(
                        ConfigIssue(at, f"{target!r} is not an outlet of this enterprise")
                    )
        for j, order in enumerate(ent.orders):
            for k, device in enumerate(order.devices):
                if device not in roles:
                    at = f"{where}.orders[{j}].devices[{k}]"
                    issues.append(ConfigIssue(at, f"{device!r} is not a meter of this enterprise"))
        for j, marking in enumerate(ent.markings):
            if marking.outlet not in outlets:
                at = f"{where}.markings[{j}].outlet"
                issues.append(
                    ConfigIssue(at, f"{marking.outlet!r} is not an outlet of this enterprise")
                )
    return issues


def _gateways(config: Config) -> list[ConfigIssue]:
    """A gateway's id is its topic level, so it must not be an MN or a meter id as well, and
    it may speak only for configured MNs and meters."""
    issues: list[ConfigIssue] = []
    mns = {o.mn for e in config.enterprises for o in e.outlets}
    mns |= {m.mn for e in config.enterprises for m in e.meters if m.mn is not None}
    meters = {m.id for e in config.enterprises for m in e.meters}
    seen: dict[str, int] = {}
    for i, gateway in enumerate(config.gateways):
        at = f'gateways[{i}] (id "{gateway.id}")'
        if gateway.id in seen:
            issues.append(
                ConfigIssue(f"{at}.id", f"duplicate gateway id, also gateways[{seen[gateway.id]}]")
            )
        seen.setdefault(gateway.id, i)
        if gateway.id in mns or gateway.id in meters:
            what = "an MN" if gateway.id in mns else "a meter id"
            issues.append(
                ConfigIssue(
                    f"{at}.id",
                    f"{gateway.id!r} is also {what}: a gateway's topic would be that sender's",
                )
            )
        for k, mn in enumerate(gateway.mns):
            if mn not in mns:
                issues.append(
                    ConfigIssue(f"{at}.mns[{k}]", f"MN {mn!r} is no outlet's or meter's logger")
                )
        for k, meter in enumerate(gateway.meters):
            if meter not in meters:
                issues.append(
                    ConfigIssue(f"{at}.meters[{k}]", f"{meter!r} is not a configured meter")
                )
    return issues


def _passwords(config: Config) -> list[ConfigIssue]:
    """With the PW check on, an outlet without pw would accept any PW: say so at load."""
    if not config.ingest.check_pw:
        return []
    return [
        ConfigIssue(
            f'enterprises[{i}] (id "{ent.id}").outlets[{j}] (id "{outlet.id}").pw',
            'required while [ingest] check_pw is on: the logger\'s PW (访问密码), or "" for a '
            "logger that sends none",
        )
        for i, ent in enumerate(config.enterprises)
        for j, outlet in enumerate(ent.outlets)
        if outlet.pw is None
    ]


def _alert_references(config: Config) -> list[ConfigIssue]:
    """Channel and brigade names used for notifications must be configured ones."""
    issues: list[ConfigIssue] = []
    channels: dict[str, int] = {}
    for i, channel in enumerate(config.alerts.channels):
        if channel.name in channels:
            at = f'alerts.channels[{i}] (name "{channel.name}")'
            issues.append(
                ConfigIssue(at, f"channel name already used by channels[{channels[channel.name]}]")
            )
        channels.setdefault(channel.name, i)

    def check(at: str, names: list[str]) -> None:
        for k, name in enumerate(names):
            if name not in channels:
                issues.append(
                    ConfigIssue(f"{at}[{k}]", f"{name!r} is not a channel in [[alerts.channels]]")
                )

    for key in ("every_change", "supervisors", "monitors"):
        check(f"alerts.{key}", getattr(config.alerts, key))
    brigades: set[str] = set()
    for i, brigade in enumerate(config.brigades):
        at = f'brigades[{i}] (id "{brigade.id}")'
        if brigade.id in brigades:
            issues.append(ConfigIssue(f"{at}.id", "duplicate brigade id"))
        brigades.add(brigade.id)
        check(f"{at}.notify", brigade.notify)
    for i, ent in enumerate(config.enterprises):
        at = f'enterprises[{i}] (id "{ent.id}")'
        check(f"{at}.notify", ent.notify)
        if ent.brigade is not None and ent.brigade not in brigades:
            issues.append(
                ConfigIssue(f"{at}.brigade", f"{ent.brigade!r} is not a brigade in [[brigades]]")
            )
    return issues


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Apply overrides in place; returns 'section.key' → variable name for error messages."""
    applied: dict[str, str] = {}
    for var, (section, key) in ENV_OVERRIDES.items():
        value = env.get(var)
        if value is None or value == "":
            continue
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            continue  # the file's own type error is reported by validation
        target[key] = value
        applied[f"{section}.{key}"] = var
    return applied


def parse_config(data: dict[str, Any], source: str, env: Mapping[str, str] | None = None) -> Config:
    """Validate already-parsed TOML data (``source`` names it in errors)."""
    applied = _apply_env(data, os.environ if env is None else env)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            entry = _entry_name(data, loc)
            dotted = ".".join(str(p) for p in loc[:2])
            if dotted in applied:
                entry = f"{entry} (from environment variable {applied[dotted]})"
            value = err.get("input")
            problem = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                problem = "unknown setting (check the spelling)"
            elif not isinstance(value, (dict, list)) and err["type"] != "missing":
                problem += f" (got {value!r})"
            issues.append(ConfigIssue(entry, problem))
        raise ConfigError(source, issues) from None
    issues = (
        _duplicates(config)
        + _meter_sources(config)
        + _references(config)
        + _alert_references(config)
        + _gateways(config)
        + _passwords(config)
    )
    if issues:
        raise ConfigError(source, issues)
    return config


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate. Raises ConfigError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [ConfigIssue("(file)", exc.strerror or str(exc))]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), [ConfigIssue("(file)", f"not UTF-8 at byte {exc.start}")]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [ConfigIssue("(TOML syntax)", str(exc))]) from None
    return parse_config(data, str(path), env)
