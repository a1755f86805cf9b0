"""What the web layer needs from the service: the database, the configuration, the case book
and the user store. Built once per application."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from alerts.cases import CaseBook
from ingest.registry import Registry
from nonsite.alert_wiring import build_case_book
from nonsite.auth import UserStore
from nonsite.config.model import Config
from nonsite.wiring import build_registry


@dataclass(frozen=True)
class WebContext:
    config: Config
    db: Engine
    book: CaseBook
    users: UserStore
    # [service] secure_cookies: served behind TLS, so the session cookie is always Secure (it
    # is also Secure on any request that a trusted proxy says came over HTTPS).
    secure_cookies: bool = False
    # The configured loggers (commands are checked against it).
    registry: Registry = field(default_factory=Registry)

    @classmethod
    def build(cls, config: Config, db: Engine) -> WebContext:
        return cls(
            config,
            db,
            build_case_book(config),
            UserStore(db),
            secure_cookies=config.service.secure_cookies,
            registry=build_registry(config),
        )
