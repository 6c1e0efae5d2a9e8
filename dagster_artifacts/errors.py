"""Typed errors of dagster-artifacts.

One hierarchy, rooted at :class:`ArtifactError`, so callers can catch everything we raise with one
``except``. Errors about bad input also subclass :class:`ValueError`; errors about things that do
not exist also subclass :class:`LookupError` (and :class:`KeyError` where Python code expects a
mapping miss). Every message says what to do next.
"""

from __future__ import annotations


class ArtifactError(Exception):
    """Base class of every error raised by dagster-artifacts."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigurationError(ArtifactError, ValueError):
    """The store, registry or settings are not usable as given."""


class InvalidNameError(ArtifactError, ValueError):
    """An artifact name, type, alias or entity/project name breaks the naming rules."""


class InvalidPathError(ArtifactError, ValueError):
    """An entry path is absolute, escapes the artifact root or is otherwise unusable."""


class InvalidReferenceError(ArtifactError, ValueError):
    """A reference URI cannot be tracked as given."""


class ReferenceLimitError(InvalidReferenceError):
    """A reference prefix expands to more objects than ``max_objects`` allows."""


class ArtifactFileNotFoundError(ArtifactError, FileNotFoundError):
    """A local file or folder added to an artifact does not exist."""


class DuplicateEntryError(ArtifactError, ValueError):
    """The same entry path was added twice with different content."""


class ArtifactTypeMismatchError(ArtifactError, ValueError):
    """An artifact name is already used with another type in this project."""


class ArtifactFinalizedError(ArtifactError):
    """A logged (committed) artifact's files cannot be changed."""


class ArtifactNotLoggedError(ArtifactError):
    """An attribute that only exists after logging was read on an unlogged artifact."""


class ArtifactNotFoundError(ArtifactError, LookupError):
    """No artifact, version or alias matches the given name."""


class EntryNotFoundError(ArtifactError, KeyError):
    """The artifact has no entry at the given path."""


class RunNotFoundError(ArtifactError, LookupError):
    """No run matches the given path or id."""


class EntryFileNotFoundError(EntryNotFoundError, FileNotFoundError):
    """``remove()`` was given a path that is neither an entry nor a folder of entries (W&B raises
    ``FileNotFoundError`` there; this is also the project's ``EntryNotFoundError``)."""


class LinkError(ArtifactError, ValueError):
    """A link that cannot be: logging into a collection of links, linking into a collection of
    logged versions, unlinking a version that is not a link."""


class NotApplicableError(ArtifactError, ValueError):
    """A W&B argument or member that has no meaning for a self-hosted store (a W&B storage
    region, a server-side pagination cursor); the message says what to use instead."""


class NotApplicableMemberError(NotApplicableError, AttributeError):
    """A W&B member (``run.log``, ``Api().automations``) that this project does not have, and
    why; an ``AttributeError`` too, so ``hasattr()`` is False as for any missing member."""


class ArtifactHasAliasesError(ArtifactError):
    """A version with aliases cannot be deleted unless ``delete_aliases=True``."""


class ChecksumMismatchError(ArtifactError):
    """Bytes read back do not match the digest recorded in the manifest."""


class VerificationError(ChecksumMismatchError):
    """``Artifact.verify`` found missing, extra or changed files."""


class ReferenceNotDownloadableError(ArtifactError):
    """A reference with an unknown scheme (or ``checksum=False``) is tracked only."""


class StorageError(ArtifactError, OSError):
    """Reading or writing stored bytes failed in a way retries did not fix: a full or read-only
    disk, denied access, a missing blob. The message names the place (``url``) and what to do;
    ``errno`` is the OS error's, when there was one, so callers can tell ``ENOSPC`` apart."""

    def __init__(self, message: str, *, url: str | None = None, errno: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.errno = errno


class ManifestError(StorageError):
    """A version's stored manifest is missing, unreadable, or not the one that was committed
    (edited after the fact); the message names the version."""


class ConflictError(ArtifactError):
    """Concurrent writers disagree (for example, two upserts of one path with other content)."""


class RegistryError(ArtifactError):
    """The registry database failed or is unreachable."""


class InvalidArgumentError(ArtifactError, ValueError):
    """An option value is out of range or unreadable (a size, a duration, ``keep_last=0``)."""
