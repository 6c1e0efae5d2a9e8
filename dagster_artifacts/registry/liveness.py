"""What the life-cycle code (gc, TTL) needs: what is still referenced, and what has expired.

Kept apart from the commit path so retention and garbage collection can grow without touching
it. Dialect-independent: anything SQLite and PostgreSQL would compute differently (aware vs
naive timestamps) is computed in Python.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagster_artifacts.digests import b64_to_hex
from dagster_artifacts.registry.models import COMMITTED, PENDING, PendingEntryRow, VersionRow
from dagster_artifacts.registry.queries import version_records
from dagster_artifacts.registry.records import LiveReferences, VersionRecord


def live_references(session: Session) -> LiveReferences:
    """Manifest keys and pending digests that no garbage collection may remove."""
    refs = LiveReferences()
    keys = session.scalars(
        select(VersionRow.manifest_key).where(
            VersionRow.state.in_((COMMITTED, PENDING)), VersionRow.manifest_key.is_not(None)
        )
    )
    refs.manifest_keys.update(key for key in keys if key)
    entries = session.scalars(
        select(PendingEntryRow.entry)
        .join(VersionRow, VersionRow.id == PendingEntryRow.version_id)
        .where(VersionRow.state == PENDING)
    )
    for entry in entries:
        digest = (entry or {}).get("digest")
        if not digest or (entry or {}).get("ref"):
            continue  # a reference's bytes live elsewhere: nothing stored to keep
        try:
            refs.pending_hex.add(b64_to_hex(digest))
        except (ValueError, TypeError):  # a digest that is not base64: nothing stored for it
            continue
    return refs


def expired_versions(session: Session, now: datetime) -> list[VersionRecord]:
    """Committed versions whose TTL has run out (``created_at + ttl <= now``), oldest first.

    The comparison is made in Python so that it means the same on every database dialect.
    """
    candidates = session.scalars(
        select(VersionRow)
        .where(
            VersionRow.state == COMMITTED,
            VersionRow.ttl_seconds.is_not(None),
            VersionRow.source_version_id.is_(None),  # a link expires with its source
        )
        .order_by(VersionRow.created_at, VersionRow.id)
    )
    expired = [
        version
        for version in candidates
        if _aware(version.created_at) + timedelta(seconds=int(version.ttl_seconds or 0)) <= now
    ]
    return version_records(session, expired)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
