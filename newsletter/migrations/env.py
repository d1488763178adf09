"""Alembic environment: runs migrations on the engine handed over by ``newsletter.db.migrate``."""

from __future__ import annotations

from alembic import context

from newsletter.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run every pending migration in one transaction on the given engine."""
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
