"""Schema migrations: Alembic, driven from code so the CLI needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

if TYPE_CHECKING:
    from authsvc.settings import Settings

# The branch for AUTHSVC_USER_SCHEMA=prisma: authsvc's own state in its own schema only.
PRISMA_VERSIONS = "prisma_versions"


def script_location() -> Path:
    """The migration scripts: packaged in a wheel, or `alembic/` in a source checkout."""
    packaged = Path(__file__).with_name("_alembic")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "alembic"


def alembic_config(database_url: str, *, own_schema: str | None = None) -> Config:
    """authsvc's own tables; or, with `own_schema` (Prisma mode), only authsvc's own state
    in that schema, with its version table there."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    # Alembic's ini interpolation treats % specially; a password may contain one.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if own_schema is not None:
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", str(script_location() / PRISMA_VERSIONS))
        config.set_main_option("authsvc_own_schema", own_schema.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, own_schema: str | None = None) -> None:
    """Bring the schema up to `revision`. Synchronous: call it outside an event loop."""
    command.upgrade(alembic_config(database_url, own_schema=own_schema), revision)


def migrate(settings: Settings) -> None:
    """What `authsvc migrate` does for these settings (the layout they select)."""
    own_schema = settings.db_schema if settings.prisma_mode else None
    upgrade(settings.database_url, own_schema=own_schema)
