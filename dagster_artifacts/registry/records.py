"""Plain, detached records the registry hands to the layers above (no ORM sessions leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dagster_artifacts.errors import ConflictError

# The registry's vocabulary, as stored in its columns. Defined here, beside the records that
# carry them, so that code reading them (the layers above, the light reader of
# :mod:`.sqlite_catalog`) never imports the SQLAlchemy models; :mod:`.models` re-exports them.
#: ``versions.state``: a numbered version, a parallel writers' version still open, a deleted one.
COMMITTED = "COMMITTED"
PENDING = "PENDING"
DELETED = "DELETED"
#: ``lineage.direction``: the run logged the version, or used it.
LOGGED = "logged"
USED = "used"
#: ``collections.kind``: versions logged into it (W&B's "sequence"), or links to versions of
#: other collections (W&B's "portfolio": a registered model, a registry collection).
SEQUENCE = "sequence"
PORTFOLIO = "portfolio"


@dataclass(frozen=True)
class LinkSource:
    """The logged version a link points at (W&B's source artifact), by id and by name."""

    id: int
    entity: str
    project: str
    name: str
    index: int
    collection_id: int


@dataclass(frozen=True)
class VersionRecord:
    """One version as the layers above see it: its artifact's names resolved, aliases listed.

    For a link (a version of a portfolio collection), ``id``, ``index``, ``aliases`` and the
    names are the link's own; ``description``, ``metadata``, ``tags``, ``ttl_seconds``,
    ``created_at``, ``updated_at`` and ``producer_run_id`` are its source's (W&B shows a link
    with its source's fields), ``source`` names the source and ``linked_at`` says when the link
    was made.
    """

    id: int
    entity: str
    project: str
    name: str
    type: str
    index: int | None
    state: str
    digest: str | None
    manifest_key: str | None
    size: int
    file_count: int
    description: str | None
    metadata: dict[str, Any]
    aliases: list[str]
    created_at: datetime
    committed_at: datetime | None
    producer_run_id: str | None
    partition_key: str | None
    ttl_seconds: int | None
    collection_id: int
    tags: list[str] = field(default_factory=list)
    updated_at: datetime | None = None
    source: LinkSource | None = None
    linked_at: datetime | None = None

    @property
    def artifact_id(self) -> int:
        """The id lineage and content belong to: the source's for a link (W&B gives a link its
        source's id), else this version's."""
        return self.source.id if self.source is not None else self.id


@dataclass(frozen=True)
class RunRecord:
    """One run, with its project's names, detached from any session."""

    id: str
    entity: str
    project: str
    name: str
    job_type: str | None
    group: str | None
    config: dict[str, Any] = field(default_factory=dict)
    state: str = "running"
    created_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class CollectionRecord:
    """One artifact (collection) with the count and total size of its committed versions."""

    id: int
    entity: str
    project: str
    name: str
    type: str
    description: str | None
    version_count: int
    size: int
    #: ``sequence`` (logged versions) or ``portfolio`` (links to versions of other collections).
    kind: str = "sequence"
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class CommitRequest:
    """Everything the registry needs to commit one version in one transaction."""

    entity: str
    project: str
    name: str
    type: str
    digest: str
    manifest_key: str
    size: int
    file_count: int
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    run_id: str | None = None
    partition_key: str | None = None
    ttl_seconds: int | None = None
    #: Set by finish_artifact: seal this pending version instead of inserting a new one.
    pending_version_id: int | None = None
    #: (count, max id) of the pending entries the manifest was built from; the commit refuses
    #: (PendingChangedError) if a writer upserted since.
    pending_marker: tuple[int, int] | None = None
    #: False when the caller did not write ``manifest_key`` (nor its blobs) because an equal
    #: committed version already had them: the commit then only dedupes to that version, and
    #: raises :class:`ReusedVersionGoneError` if it was deleted meanwhile.
    manifest_written: bool = True
    tags: tuple[str, ...] = ()
    #: The committed version this one was derived from (``new_draft()``, ``incremental=True``):
    #: its entries were carried over by digest, their blobs neither checked nor uploaded, so the
    #: commit refuses (:class:`BaseVersionChangedError`) if that version is no longer committed.
    base_version_id: int | None = None
    #: ``incremental=True``: the base must also still be the newest committed version (of this
    #: partition key); None above then means "no version yet".
    base_is_newest: bool = False


@dataclass(frozen=True)
class PendingUpsert:
    """One parallel writer's contribution to the pending version of ``distributed_id``."""

    entity: str
    project: str
    name: str
    type: str
    distributed_id: str
    #: path -> W&B manifest entry JSON (digest, size, ref, extra)
    entries: dict[str, dict[str, Any]]
    digest_algorithm: str
    run_id: str | None = None
    aliases: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class PendingSnapshot:
    """What the writers upserted so far into one pending version."""

    version_id: int
    entries: dict[str, dict[str, Any]]
    marker: tuple[int, int]
    digest_algorithm: str
    aliases: tuple[str, ...]
    metadata: dict[str, Any]
    description: str | None


@dataclass
class LiveReferences:
    """Everything a committed or pending version still needs, so garbage collection keeps it.

    ``manifest_keys``: manifests of committed (and sealed pending) versions.
    ``pending_hex``: hex digests upserted into pending versions; their algorithm is not recorded
    per entry, so a blob with this hex is kept under every algorithm.
    """

    manifest_keys: set[str] = field(default_factory=set)
    pending_hex: set[str] = field(default_factory=set)


class PendingChangedError(ConflictError):
    """A writer upserted into a pending version while ``finish_artifact`` was sealing it.

    ``finish_artifact`` catches it and builds the manifest again from the new entries.
    """


class BaseVersionChangedError(ConflictError):
    """The version a derived commit builds on was deleted (or, for ``incremental=True``, is no
    longer the newest) by the time of its registry transaction.

    The commit path catches it: an incremental log merges again with the new newest version; a
    ``new_draft()`` checks the carried blobs are still stored (and uploads nothing it lacks).
    """


class ReusedVersionGoneError(ConflictError):
    """The committed version a commit meant to reuse (skipping its upload) was deleted meanwhile.

    ``Engine.commit`` catches it, uploads the blobs and the manifest, and commits again, so a
    concurrent delete and gc can never leave a new version pointing at a missing manifest.
    """
