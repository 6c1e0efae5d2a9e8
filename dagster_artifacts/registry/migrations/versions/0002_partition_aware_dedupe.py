"""partition-aware dedupe: the partition key is part of a version's identity

Before, one partial unique index allowed one committed version per (artifact, digest), so two
partitions whose outputs were byte-identical collapsed into one version tied to the first
partition. Now unpartitioned versions keep that rule and partitioned ones get one committed
version per (artifact, partition key, digest).

Upgrading never fails on existing data: the old rule was stricter than the new one. Downgrading
refuses (with a message) when two partitions already share a digest, since the old index
cannot hold such data.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 11:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_INDEX = "uq_versions_collection_digest_committed"
OLD_WHERE = "state = 'COMMITTED'"
UNPARTITIONED = "uq_versions_digest_unpartitioned"
UNPARTITIONED_WHERE = "state = 'COMMITTED' AND partition_key IS NULL"
PARTITIONED = "uq_versions_partition_digest"
PARTITIONED_WHERE = "state = 'COMMITTED' AND partition_key IS NOT NULL"


def _where(predicate: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    op.create_index(
        UNPARTITIONED, "versions", ["collection_id", "digest"], unique=True, **_where(UNPARTITIONED_WHERE)
    )
    op.create_index(
        PARTITIONED,
        "versions",
        ["collection_id", "partition_key", "digest"],
        unique=True,
        **_where(PARTITIONED_WHERE),
    )
    op.drop_index(OLD_INDEX, table_name="versions")


def downgrade() -> None:
    shared = op.get_bind().execute(
        sa.text(
            "SELECT collection_id, digest FROM versions WHERE state = 'COMMITTED' "
            "GROUP BY collection_id, digest HAVING count(*) > 1"
        )
    ).first()
    if shared is not None:
        raise RuntimeError(
            f"Cannot downgrade below 0002: artifact collection {shared[0]} has several committed "
            f"versions with digest {shared[1]} (one per partition), which revision 0001 cannot "
            "hold. Delete the extra versions first, or stay on 0002."
        )
    op.create_index(OLD_INDEX, "versions", ["collection_id", "digest"], unique=True, **_where(OLD_WHERE))
    op.drop_index(PARTITIONED, table_name="versions")
    op.drop_index(UNPARTITIONED, table_name="versions")
