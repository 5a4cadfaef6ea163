"""Schema migrations: Alembic, driven from code so the CLI needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config


def script_location() -> Path:
    """The migration scripts: packaged in a wheel, or `alembic/` in a source checkout."""
    packaged = Path(__file__).with_name("_alembic")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "alembic"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    # Alembic's ini interpolation treats % specially; a password may contain one.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision`. Synchronous: call it outside an event loop."""
    command.upgrade(alembic_config(database_url), revision)
