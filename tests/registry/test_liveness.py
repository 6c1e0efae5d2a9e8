"""What the registry tells garbage collection and TTL expiry, on SQLite and PostgreSQL.

gc end to end (blobs really kept or freed) is in ``tests/test_lifecycle.py``; these pin the two
registry reads it relies on.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dagster_artifacts.digests import hex_to_b64
from dagster_artifacts.registry import CommitRequest, PendingUpsert, Registry


def _commit(registry: Registry, digest: str, ttl_seconds: int | None = None) -> int:
    record, _created = registry.commit_version(
        CommitRequest(
            entity="e",
            project="p",
            name="data",
            type="dataset",
            digest=digest,
            manifest_key=f"manifests/{digest}.json",
            size=1,
            file_count=1,
            ttl_seconds=ttl_seconds,
        )
    )
    return record.id


def test_live_references_are_committed_manifests_and_pending_digests(registry_url: str) -> None:
    registry = Registry(registry_url)
    try:
        _commit(registry, "kept")
        _commit(registry, "deleted")
        registry.delete_version(registry.resolve("e", "p", "data", "v1").id)
        registry.upsert_pending(
            PendingUpsert(
                entity="e",
                project="p",
                name="par",
                type="dataset",
                distributed_id="batch",
                entries={
                    "a.txt": {"digest": hex_to_b64("ab" * 16)},
                    "ref.txt": {"digest": hex_to_b64("cd" * 16), "ref": "s3://b/k"},
                    "odd.txt": {"digest": "not base64!"},
                },
                digest_algorithm="md5",
            )
        )
        refs = registry.live_references()
        assert refs.manifest_keys == {"manifests/kept.json"}
        assert refs.pending_hex == {"ab" * 16}  # a reference's bytes are not ours to keep
    finally:
        registry.dispose()


def test_expired_versions_are_those_past_their_ttl(registry_url: str) -> None:
    registry = Registry(registry_url)
    try:
        hour = _commit(registry, "hour", ttl_seconds=3600)
        _commit(registry, "day", ttl_seconds=86400)
        _commit(registry, "forever")
        now = datetime.now(timezone.utc)
        assert registry.expired_versions(now) == []
        assert [r.id for r in registry.expired_versions(now + timedelta(hours=2))] == [hour]
        later = [r.digest for r in registry.expired_versions(now + timedelta(days=2))]
        assert later == ["hour", "day"]  # oldest first
        assert registry.expired_versions() == []  # default: now
    finally:
        registry.dispose()
