"""Alembic environment: runs on the connection the registry hands over (see migrate.py)."""

from __future__ import annotations

from alembic import context

from dagster_artifacts.registry.models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic` CLI use, e.g. autogenerate during development
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
