"""links (registry promotion), tags, and update timestamps

W&B's registry links a logged version into another collection (a "portfolio": a registered
model, a ``wandb-registry-*`` collection) without copying it. Here a link is a version row of
that collection with ``source_version_id`` pointing at the version it links; it copies its
source's digest and manifest key, so it resolves, downloads and keeps its blobs alive in gc like
any version. Collections say what they hold (``kind``: ``sequence`` of logged versions or
``portfolio`` of links). Versions and collections get ``tags`` and ``updated_at``.

Dedupe by digest stays a rule of logged versions only: the unpartitioned digest index now leaves
links out, and a new index allows one membership per (collection, source version).

Upgrading never fails on existing data (no links exist yet; every collection is a sequence).
Downgrading refuses while links exist, since the old schema cannot tell them from logged
versions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UNPARTITIONED = "uq_versions_digest_unpartitioned"
OLD_UNPARTITIONED_WHERE = "state = 'COMMITTED' AND partition_key IS NULL"
NEW_UNPARTITIONED_WHERE = (
    "state = 'COMMITTED' AND partition_key IS NULL AND source_version_id IS NULL"
)
LINK_SOURCE = "uq_versions_link_source"
LINK_SOURCE_WHERE = "state = 'COMMITTED' AND source_version_id IS NOT NULL"


def _where(predicate: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    op.add_column(
        "collections",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="sequence"),
    )
    op.add_column("collections", sa.Column("tags", sa.JSON(), nullable=True))
    op.add_column("collections", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("versions", sa.Column("tags", sa.JSON(), nullable=True))
    op.add_column("versions", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    # No foreign key: SQLite cannot add one without rebuilding the table, and dropping the old
    # table would cascade-delete every alias, lineage edge and pending entry. The registry keeps
    # links consistent itself (a source's delete takes its links in the same transaction).
    op.add_column("versions", sa.Column("source_version_id", sa.Integer(), nullable=True))
    op.create_index(
        "ix_versions_source_version_id", "versions", ["source_version_id"], unique=False
    )
    op.drop_index(UNPARTITIONED, table_name="versions")
    op.create_index(
        UNPARTITIONED,
        "versions",
        ["collection_id", "digest"],
        unique=True,
        **_where(NEW_UNPARTITIONED_WHERE),
    )
    op.create_index(
        LINK_SOURCE,
        "versions",
        ["collection_id", "source_version_id"],
        unique=True,
        **_where(LINK_SOURCE_WHERE),
    )


def downgrade() -> None:
    linked = op.get_bind().execute(
        sa.text(
            "SELECT count(*) FROM versions "
            "WHERE source_version_id IS NOT NULL AND state = 'COMMITTED'"
        )
    ).scalar()
    if linked:
        raise RuntimeError(
            f"Cannot downgrade below 0004: the registry holds {linked} links (linked versions), "
            "which revision 0003 cannot tell from logged versions. Unlink them first "
            "(artifact.unlink()), or stay on 0004."
        )
    op.drop_index(LINK_SOURCE, table_name="versions")
    op.drop_index(UNPARTITIONED, table_name="versions")
    op.create_index(
        UNPARTITIONED,
        "versions",
        ["collection_id", "digest"],
        unique=True,
        **_where(OLD_UNPARTITIONED_WHERE),
    )
    op.drop_index("ix_versions_source_version_id", table_name="versions")
    op.drop_column("versions", "source_version_id")
    op.drop_column("versions", "updated_at")
    op.drop_column("versions", "tags")
    op.drop_column("collections", "updated_at")
    op.drop_column("collections", "tags")
    op.drop_column("collections", "kind")
