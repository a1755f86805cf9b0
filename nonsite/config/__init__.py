"""The configuration file: one TOML file, validated on load, with environment overrides."""

from nonsite.config.load import ConfigError, ConfigIssue, load_config
from nonsite.config.model import Config

__all__ = ["Config", "ConfigError", "ConfigIssue", "load_config"]
