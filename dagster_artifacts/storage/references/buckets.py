"""``s3://`` and ``gs://`` references (W&B's rules).

Reference entries follow W&B (checked against wandb by tests/parity): digest = the object's ETag
(quotes stripped); S3 adds ``extra.etag``, and ``extra.versionID`` (the VersionId) when the bucket
is versioned; GCS records only ``extra.versionID``, the generation, versioned bucket or not. A
download fetches the recorded version; without one, an object whose ETag changed is refused
(:class:`ChecksumMismatchError`) rather than returning other bytes. Bytes are verified against the
object's MD5 where the store exposes one (GCS ``md5Hash``; S3 single-part, non-KMS ETags).
"""

from __future__ import annotations

import asyncio
import os
import posixpath
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import fsspec
from fsspec.asyn import AsyncFileSystem, sync

from dagster_artifacts.errors import (
    ArtifactFileNotFoundError,
    ChecksumMismatchError,
    InvalidReferenceError,
)
from dagster_artifacts.manifest import ManifestEntry
from dagster_artifacts.names import normalize_entry_path
from dagster_artifacts.storage.cloud import GCS_WRITE_OPTIONS, S3_PROTOCOLS, cloud_options
from dagster_artifacts.storage.pipeline import adopt_verified
from dagster_artifacts.storage.references.handler import (
    check_limit,
    md5_from_etag,
    strip_etag,
)
from dagster_artifacts.storage.retry import retry_async
from dagster_artifacts.storage.scratch import temp_path_beside


class ObjectInfo:
    """What a reference records and a download checks, for one object (or object version)."""

    def __init__(
        self,
        key: str,
        etag: str | None,
        size: int | None,
        version_id: str | None,
        md5: str | None,
    ) -> None:
        self.key = key
        self.etag = etag
        self.size = size
        self.version_id = version_id
        self.md5 = md5


class ObjectReferenceHandler:
    """``s3://`` and ``gs://`` references: objects and prefixes, versions, verified downloads."""

    content_addressed = False  # ETags

    def __init__(self, protocol: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.protocol = protocol
        self.storage_options = dict(storage_options or {})

    def with_options(self, storage_options: Mapping[str, Any] | None) -> ObjectReferenceHandler:
        """The same handler, connecting with the store's options (endpoint, credentials)."""
        if not storage_options:
            return self
        return ObjectReferenceHandler(self.protocol, storage_options)

    # -- connection -------------------------------------------------------------------------------
    @property
    def is_s3(self) -> bool:
        return self.protocol in S3_PROTOCOLS

    def filesystem(self, version_aware: bool = False) -> AsyncFileSystem:
        options = cloud_options(self.protocol, self.storage_options)
        if not self.is_s3:  # per-object write options of the store; references only read
            for name in GCS_WRITE_OPTIONS:
                options.pop(name, None)
        if version_aware:
            options["version_aware"] = True
        fs = fsspec.filesystem(self.protocol, **options)
        assert isinstance(fs, AsyncFileSystem)
        return fs

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        rest = uri.split("://", 1)[1]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise InvalidReferenceError(f"Reference {uri!r} names no bucket; use s3://bucket/key.")
        return bucket, key.rstrip("/")

    def _uri(self, bucket: str, key: str) -> str:
        return f"{self.protocol}://{bucket}/{key}"

    def _version_in(self, uri: str) -> tuple[str, str | None]:
        """``uri`` without the version it names, and that version: S3's ``?versionId=...``
        query, GCS's ``#<generation>`` fragment (W&B's spellings). A ``#`` in an S3 URI is
        part of the key (W&B cuts it off as a URL fragment: README, "What differs")."""
        if self.is_s3:
            base, _, query = uri.partition("?")
            return base, (dict(parse_qsl(query)).get("versionId") or None)
        base, _, fragment = uri.partition("#")
        return base, fragment or None

    # -- store ------------------------------------------------------------------------------------
    def store(
        self, uri: str, name: str | None, checksum: bool, max_objects: int
    ) -> list[ManifestEntry]:
        """W&B's entries for an object (a version of it, when the URI names one) or a prefix."""
        uri, version = self._version_in(uri)
        bucket, key = self._split(uri)
        if not checksum:  # W&B: named after the whole key (or the bucket), the URI as digest
            raw_key = uri.split("://", 1)[1].partition("/")[2]
            base = self._uri(bucket, raw_key)
            path = normalize_entry_path(name or raw_key or bucket)
            return [ManifestEntry(path=path, digest=base, ref=base)]
        fs = self.filesystem(version_aware=bool(version) and self.is_s3)
        fs.invalidate_cache()
        single = sync(fs.loop, self._head, fs, bucket, key, version) if key else None
        if single is None and version:
            raise ArtifactFileNotFoundError(
                f"Reference {uri!r}: {bucket}/{key} has no version {version!r}; check the "
                "version id (S3 ?versionId=..., GCS #generation)."
            )
        if single is not None:
            versioned = single.version_id is not None
            path = normalize_entry_path(name or posixpath.basename(key))
            return [self._entry(path, bucket, single, versioned)]
        try:
            objects, versioned = sync(fs.loop, self._list, fs, bucket, key, max_objects + 1)
        except FileNotFoundError as error:
            raise ArtifactFileNotFoundError(
                f"Reference {uri!r} cannot be listed: {error}. Check that bucket {bucket!r} "
                "exists and that the endpoint and credentials point at the right store."
            ) from error
        if self.is_s3:  # W&B leaves empty objects out of an S3 prefix (folder placeholders)
            objects = [info for info in objects if info.size]
        check_limit(len(objects), max_objects, uri)
        if not objects:
            raise ArtifactFileNotFoundError(
                f"Reference {uri!r} matches no object and no prefix; check the bucket and key."
            )
        entries = []
        for info in sorted(objects, key=lambda item: item.key):
            relative = info.key[len(key) + 1 :] if key else info.key
            path = normalize_entry_path(posixpath.join(name, relative) if name else relative)
            entries.append(self._entry(path, bucket, info, versioned))
        return entries

    def _entry(self, path: str, bucket: str, info: ObjectInfo, versioned: bool) -> ManifestEntry:
        """W&B's entry: S3 records ``etag`` and, in a versioned bucket, ``versionID``; GCS
        records only ``versionID``, the object's generation (an integer), versioned or not."""
        extra: dict[str, Any] = {}
        if not self.is_s3:
            if info.version_id:
                extra["versionID"] = int(info.version_id)
        else:
            if info.etag:
                extra["etag"] = info.etag
            if versioned and info.version_id:
                extra["versionID"] = info.version_id
        ref = self._uri(bucket, info.key)
        return ManifestEntry(
            path=path, digest=info.etag or ref, size=info.size, ref=ref, extra=extra
        )

    async def _head(
        self,
        fs: AsyncFileSystem,
        bucket: str,
        key: str,
        version_id: str | None,
    ) -> ObjectInfo | None:
        """One object's metadata, or None if no object has exactly this key."""
        url = self._uri(bucket, key) + (f" (version {version_id})" if version_id else "")
        fs.invalidate_cache(f"{bucket}/{key}")  # metadata must be fresh, never a cached listing
        if self.is_s3:

            async def head() -> dict[str, Any]:
                extra = {"VersionId": version_id} if version_id else {}
                return await fs._call_s3("head_object", Bucket=bucket, Key=key, **extra)

            try:
                response = await retry_async(head, "read metadata of", url)
            except FileNotFoundError:
                return None
            etag = strip_etag(response.get("ETag"))
            kms = response.get("ServerSideEncryption") == "aws:kms"
            raw_version = response.get("VersionId")
            return ObjectInfo(
                key,
                etag,
                int(response.get("ContentLength", 0)),
                raw_version if raw_version not in (None, "null") else None,
                None if kms else md5_from_etag(etag),
            )

        async def info() -> dict[str, Any]:
            extra = {"generation": version_id} if version_id else {}
            return await fs._info(f"{bucket}/{key}", **extra)

        try:
            response = await retry_async(info, "read metadata of", url)
        except FileNotFoundError:
            return None
        if response.get("type") != "file":
            return None
        generation = str(response["generation"]) if response.get("generation") else None
        return ObjectInfo(
            key,
            strip_etag(response.get("etag")),
            int(response.get("size", 0)),
            generation,  # recorded whether the bucket keeps old generations or not, as W&B
            response.get("md5Hash"),
        )

    async def _list(
        self, fs: AsyncFileSystem, bucket: str, key: str, limit: int
    ) -> tuple[list[ObjectInfo], bool]:
        """Objects under ``key/``, stopping once more than ``limit`` are seen."""
        prefix = f"{key}/" if key else ""
        url = self._uri(bucket, prefix)
        if self.is_s3:
            return await retry_async(lambda: self._list_s3(fs, bucket, prefix, limit), "list", url)
        found = await retry_async(lambda: fs._find(f"{bucket}/{prefix}", detail=True), "list", url)
        objects = []
        for full, info in found.items():
            object_key = full.split("/", 1)[1] if "/" in full else ""
            if info.get("type") != "file" or not object_key.startswith(prefix):
                continue
            generation = str(info["generation"]) if info.get("generation") else None
            objects.append(
                ObjectInfo(
                    object_key,
                    strip_etag(info.get("etag")),
                    int(info.get("size", 0)),
                    generation,
                    info.get("md5Hash"),
                )
            )
        return objects, True

    async def _list_s3(
        self, fs: AsyncFileSystem, bucket: str, prefix: str, limit: int
    ) -> tuple[list[ObjectInfo], bool]:
        try:
            status = await fs._call_s3("get_bucket_versioning", Bucket=bucket)
        except PermissionError:  # read-only credentials may not see bucket settings
            status = {}
        versioned = status.get("Status") in ("Enabled", "Suspended")
        objects: list[ObjectInfo] = []
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while len(objects) < limit:
            if versioned:
                page = await fs._call_s3("list_object_versions", **kwargs)
                items = [v for v in page.get("Versions", []) if v.get("IsLatest")]
            else:
                page = await fs._call_s3("list_objects_v2", **kwargs)
                items = page.get("Contents", [])
            for item in items:
                if item["Key"].endswith("/"):
                    continue  # "folder" placeholder objects
                etag = strip_etag(item.get("ETag"))
                version = item.get("VersionId")
                objects.append(
                    ObjectInfo(
                        item["Key"],
                        etag,
                        int(item.get("Size", 0)),
                        version if version not in (None, "null") else None,
                        md5_from_etag(etag),
                    )
                )
            if not page.get("IsTruncated"):
                break
            if versioned:
                kwargs["KeyMarker"] = page.get("NextKeyMarker")
                kwargs["VersionIdMarker"] = page.get("NextVersionIdMarker")
            else:
                kwargs["ContinuationToken"] = page.get("NextContinuationToken")
        return objects, versioned

    # -- load -------------------------------------------------------------------------------------
    def load(self, entry: ManifestEntry, dest: str) -> None:
        assert entry.ref is not None
        recorded_version = entry.extra.get("versionID") if entry.extra else None
        version_id = str(recorded_version) if recorded_version is not None else None
        fs = self.filesystem(version_aware=bool(version_id) and self.is_s3)
        sync(fs.loop, self.load_async, fs, entry, dest, version_id)

    async def load_async(
        self, fs: AsyncFileSystem, entry: ManifestEntry, dest: str, version_id: str | None
    ) -> None:
        """Fetch the recorded version (or the current object, if unchanged), verified."""
        assert entry.ref is not None
        bucket, key = self._split(entry.ref)
        untracked = entry.digest == entry.ref  # checksum=False: nothing to compare against
        info = await self._head(fs, bucket, key, None if untracked else version_id)
        if info is None:
            raise ArtifactFileNotFoundError(
                f"Referenced object {entry.ref}"
                + (f" (version {version_id})" if version_id else "")
                + " no longer exists; restore it or re-log the artifact."
            )
        # S3 entries carry the ETag in extra, GCS entries only as their digest (as W&B's do).
        recorded = (entry.extra.get("etag") if entry.extra else None) or entry.digest
        if not untracked and recorded and info.etag != recorded:
            why = (
                f"the store did not serve the recorded version {version_id} (a bucket without "
                "versioning keeps only the newest)"
                if version_id
                else "no version id was recorded to fetch the old bytes"
            )
            raise ChecksumMismatchError(
                f"{entry.ref} changed since it was referenced (ETag {info.etag!r}, recorded "
                f"{recorded!r}) and {why}; enable bucket versioning or re-log the artifact to "
                "track the new content."
            )
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = temp_path_beside(dest)
        extra: dict[str, Any] = {}
        if version_id and not untracked:
            extra = {"version_id": version_id} if self.is_s3 else {"generation": version_id}
        try:
            try:
                await retry_async(
                    lambda: fs._get_file(f"{bucket}/{key}", tmp, **extra), "download", entry.ref
                )
            except FileNotFoundError as error:  # deleted between the HEAD and the GET
                raise ArtifactFileNotFoundError(
                    f"Referenced object {entry.ref} no longer exists; restore it or re-log "
                    "the artifact."
                ) from error
            await asyncio.to_thread(
                adopt_verified,
                tmp,
                dest,
                expected_digest=None if untracked else info.md5,
                expected_size=None if untracked else entry.size,
                source=entry.ref,
            )
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
