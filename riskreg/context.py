"""The context of a change: who is acting, under which configuration, and when.

Apart from ``riskreg.register`` (which re-exports it) so that commands reading with
SQLAlchemy Core (``review due``) need not import the ORM to have one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from riskreg.config import Config


@dataclass(frozen=True)
class Context:
    """Who is acting, under which configuration, and when (UTC)."""

    actor: str
    config: Config
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def today(self) -> dt.date:
        return self.now.date()
