"""pending writer state in columns instead of inside the metadata JSON

Revision 0001 kept the state of a pending (parallel writers) version inside its ``metadata``
column as ``{"digest_algorithm", "aliases", "metadata", "description"}``. Now the algorithm and
the requested aliases have their own columns, and the writers' metadata and description live in
the version's ``metadata`` and ``description`` columns, as for a committed version. Pending rows
are converted both ways; committed rows are untouched.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 11:45:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

versions = sa.table(
    "versions",
    sa.column("id", sa.Integer()),
    sa.column("state", sa.String()),
    sa.column("metadata", sa.JSON()),
    sa.column("description", sa.Text()),
    sa.column("digest_algorithm", sa.String()),
    sa.column("pending_aliases", sa.JSON()),
)


def _pending_rows() -> list[Any]:
    return list(
        op.get_bind().execute(sa.select(versions).where(versions.c.state == "PENDING")).mappings()
    )


def upgrade() -> None:
    op.add_column("versions", sa.Column("digest_algorithm", sa.String(length=16), nullable=True))
    op.add_column("versions", sa.Column("pending_aliases", sa.JSON(), nullable=True))
    bind = op.get_bind()
    for row in _pending_rows():
        info = dict(row["metadata"] or {})
        bind.execute(
            versions.update()
            .where(versions.c.id == row["id"])
            .values(
                digest_algorithm=info.get("digest_algorithm"),
                pending_aliases=list(info.get("aliases") or []),
                metadata=dict(info.get("metadata") or {}),
                description=info.get("description", row["description"]),
            )
        )


def downgrade() -> None:
    bind = op.get_bind()
    for row in _pending_rows():
        bind.execute(
            versions.update()
            .where(versions.c.id == row["id"])
            .values(
                metadata={
                    "digest_algorithm": row["digest_algorithm"],
                    "aliases": list(row["pending_aliases"] or []),
                    "metadata": dict(row["metadata"] or {}),
                    "description": row["description"],
                },
                description=None,
            )
        )
    op.drop_column("versions", "pending_aliases")
    op.drop_column("versions", "digest_algorithm")
