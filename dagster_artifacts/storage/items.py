"""What a blob store moves: one local file up (:class:`BlobUpload`), one blob down
(:class:`BlobDownload`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BlobUpload:
    """One local file to store under ``key``, expected to hash to ``digest``.

    ``staged`` marks a private copy made (and hashed) when the file was added to the artifact
    (:func:`.staged.stage_copy`): it is not hashed again, and a local store takes it by
    ``rename`` instead of copying it. The file is consumed: after the upload it may be gone.
    """

    local_path: str
    key: str
    digest: str | None = None
    algorithm: str = "md5"
    staged: bool = False
    size: int | None = None  # for progress only


@dataclass(frozen=True)
class BlobDownload:
    """One stored blob to copy to local ``dest``, verified against ``digest`` (and ``size``).

    ``tee``, if given, may be handed the verified bytes too, when the transfer holds them in
    memory anyway (a blob read from a pack): the download cache keeps them that way without
    reading the file back.
    """

    key: str
    dest: str
    digest: str
    algorithm: str = "md5"
    size: int | None = None
    tee: Callable[[bytes], None] | None = None
