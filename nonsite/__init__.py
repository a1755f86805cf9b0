"""The composition: configuration → stages → processes, and what people use around them.

nonsite owns no stage of its own: it reads the configuration (:mod:`nonsite.config`), builds
the ingest, rule and alert stages from it (:mod:`nonsite.stages`, :mod:`nonsite.rule_wiring`,
:mod:`nonsite.alert_wiring`), runs them as the service's processes (:mod:`nonsite.service`,
:mod:`nonsite.pipeline_worker`), and keeps the HTTP API and dashboard (:mod:`nonsite.web`),
accounts (:mod:`nonsite.auth`), the CLI (:mod:`nonsite.cli`) and the simulator.

The names below are imported on first use: ``import nonsite`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.lazy import lazy_exports

if TYPE_CHECKING:
    from nonsite.config.load import ConfigError, load_config, parse_config
    from nonsite.config.model import Config
    from nonsite.service import Service
    from nonsite.stages import build_stages

__version__ = "0.1.0"

_HOMES = {
    "Config": "nonsite.config.model",
    "ConfigError": "nonsite.config.load",
    "load_config": "nonsite.config.load",
    "parse_config": "nonsite.config.load",
    "Service": "nonsite.service",
    "build_stages": "nonsite.stages",
}

__all__ = [
    "Config",
    "ConfigError",
    "Service",
    "__version__",
    "build_stages",
    "load_config",
    "parse_config",
]


__getattr__ = lazy_exports(__name__, _HOMES)
