"""Registry queries the life-cycle code needs: what is still referenced, and what has expired.

Kept apart from :mod:`dagster_artifacts.registry.registry` so retention and garbage collection
can grow without touching the commit path. Every function is one read transaction over the
registry's own SQLAlchemy engine, dialect-independent (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagster_artifacts.digests import b64_to_hex
from dagster_artifacts.registry.models import COMMITTED, PENDING, PendingEntry, Version
from dagster_artifacts.registry.records import VersionRecord
from dagster_artifacts.registry.registry import Registry


@dataclass
class LiveReferences:
    """Everything a committed or pending version still needs.

    ``manifest_keys``: manifests of committed (and sealed pending) versions.
    ``pending_hex``: hex digests upserted into pending versions; their algorithm is not recorded
    per entry, so a blob with this hex is kept under every algorithm.
    """

    manifest_keys: set[str] = field(default_factory=set)
    pending_hex: set[str] = field(default_factory=set)


def live_references(registry: Registry) -> LiveReferences:
    """Manifest keys and pending digests that no garbage collection may remove."""

    def work(session: Session) -> LiveReferences:
        refs = LiveReferences()
        keys = session.scalars(
            select(Version.manifest_key).where(
                Version.state.in_((COMMITTED, PENDING)), Version.manifest_key.is_not(None)
            )
        )
        refs.manifest_keys.update(key for key in keys if key)
        entries = session.scalars(
            select(PendingEntry.entry)
            .join(Version, Version.id == PendingEntry.version_id)
            .where(Version.state == PENDING)
        )
        for entry in entries:
            digest = (entry or {}).get("digest")
            if not digest or (entry or {}).get("ref"):
                continue
            try:
                refs.pending_hex.add(b64_to_hex(digest))
            except (ValueError, TypeError):  # a digest that is not base64: nothing stored for it
                continue
        return refs

    return registry._transaction(work)


def expired_versions(registry: Registry, now: datetime | None = None) -> list[VersionRecord]:
    """Committed versions whose TTL has run out (``created_at + ttl <= now``), oldest first.

    The comparison is made in Python so that it means the same on every database dialect.
    """
    moment = now or datetime.now(timezone.utc)

    def work(session: Session) -> list[VersionRecord]:
        candidates = session.scalars(
            select(Version)
            .where(Version.state == COMMITTED, Version.ttl_seconds.is_not(None))
            .order_by(Version.created_at, Version.id)
        )
        expired = [
            version
            for version in candidates
            if _aware(version.created_at) + timedelta(seconds=int(version.ttl_seconds or 0))
            <= moment
        ]
        return registry._records(session, expired)

    return registry._transaction(work)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
