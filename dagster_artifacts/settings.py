"""Configuration shared by the plain API, the CLI and the Dagster resource.

Arguments win over environment variables, which win over defaults:

=============================== =============================================================
``DAGSTER_ARTIFACTS_ROOT``      fsspec URL of the store (``/path``, ``file://``, ``memory://``,
                                ``s3://``, ``gs://``). Default: :func:`default_root`.
``DAGSTER_ARTIFACTS_DATABASE``  SQLAlchemy URL of the registry. Default: SQLite file
                                ``registry.db`` inside a local root.
``DAGSTER_ARTIFACTS_ENTITY``    default entity (``default``)
``DAGSTER_ARTIFACTS_PROJECT``   default project (``uncategorized``, as in W&B)
``DAGSTER_ARTIFACTS_CACHE_DIR`` local download cache (platform cache dir)
``DAGSTER_ARTIFACTS_DIR``       parent of default download folders (``./artifacts``)
``DAGSTER_ARTIFACTS_UI_URL``    base URL of the artifact browser: ``artifact.url`` is built on
                                it (``""`` when unset, as W&B's is when it cannot build one)
=============================== =============================================================

How this machine's caches behave (:class:`MachineSettings`, read once with the rest):

===================================== =======================================================
``DAGSTER_ARTIFACTS_CACHE``           download cache: ``1`` on, ``0`` off; unset: on for stores
                                      whose bytes are not on this machine already
``DAGSTER_ARTIFACTS_CACHE_MAX_BYTES`` its byte budget (``10GB``, ``500MiB``...), LRU beyond it
``DAGSTER_ARTIFACTS_CACHE_LINK``      ``copy`` (default) or ``hardlink`` (read-only links)
``DAGSTER_ARTIFACTS_CACHE_VERIFY``    ``1``: hash large cached files too as they leave it
``DAGSTER_ARTIFACTS_STAT_CACHE``      ``0``: hash every file on every log (no stat cache)
===================================== =======================================================
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from dagster_artifacts.errors import ConfigurationError, InvalidArgumentError
from dagster_artifacts.names import validate_name
from dagster_artifacts.units import parse_size

APP_NAME = "dagster-artifacts"
ENV_ROOT = "DAGSTER_ARTIFACTS_ROOT"
ENV_DATABASE = "DAGSTER_ARTIFACTS_DATABASE"
ENV_ENTITY = "DAGSTER_ARTIFACTS_ENTITY"
ENV_PROJECT = "DAGSTER_ARTIFACTS_PROJECT"
ENV_CACHE_DIR = "DAGSTER_ARTIFACTS_CACHE_DIR"
ENV_DOWNLOAD_DIR = "DAGSTER_ARTIFACTS_DIR"
ENV_CACHE = "DAGSTER_ARTIFACTS_CACHE"
ENV_CACHE_MAX_BYTES = "DAGSTER_ARTIFACTS_CACHE_MAX_BYTES"
ENV_CACHE_LINK = "DAGSTER_ARTIFACTS_CACHE_LINK"
ENV_CACHE_VERIFY = "DAGSTER_ARTIFACTS_CACHE_VERIFY"
ENV_STAT_CACHE = "DAGSTER_ARTIFACTS_STAT_CACHE"
ENV_UI_URL = "DAGSTER_ARTIFACTS_UI_URL"
DEFAULT_CACHE_MAX_BYTES = 10 * 1000**3
DEFAULT_ENTITY = "default"
DEFAULT_PROJECT = "uncategorized"
LOCAL_PROTOCOLS = ("file", "local")


def default_root() -> str:
    """The one local store every entry point uses when nothing is configured."""
    return str(platformdirs.user_data_path(APP_NAME) / "store")


def default_cache_dir() -> str:
    return str(platformdirs.user_cache_path(APP_NAME))


def split_protocol(url: str) -> tuple[str, str]:
    """``("s3", "bucket/prefix")`` for ``s3://bucket/prefix``; ``("file", path)`` for paths."""
    if "://" in url:
        protocol, rest = url.split("://", 1)
        return protocol.lower(), rest
    return "file", url


def _flag(name: str) -> bool | None:
    """True / False for the usual spellings of on and off, None when unset or unknown."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


@dataclass(frozen=True)
class MachineSettings:
    """Where this machine keeps its caches and how they behave; independent of any store, so
    that a draft built outside a run (staging, stat cache) reads the same values."""

    cache_dir: str = field(default_factory=default_cache_dir)
    #: ``auto`` (on for stores whose bytes are elsewhere), ``on`` or ``off``.
    download_cache: str = "auto"
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES
    #: ``copy`` or ``hardlink``: how files leave the download cache.
    cache_link: str = "copy"
    #: Hash large files leaving the download cache too (not only trust their fingerprint).
    cache_verify: bool = False
    stat_cache: bool = True

    @classmethod
    def resolve(cls, cache_dir: str | os.PathLike[str] | None = None) -> MachineSettings:
        env = os.environ
        flag = _flag(ENV_CACHE)
        link = env.get(ENV_CACHE_LINK, "").strip().lower()
        if link in ("", "copy"):
            link = "copy"
        elif link in ("hardlink", "link"):
            link = "hardlink"
        else:
            raise InvalidArgumentError(
                f"{ENV_CACHE_LINK}={link!r} is not a placement mode; use 'copy' (default) or "
                "'hardlink'."
            )
        budget = env.get(ENV_CACHE_MAX_BYTES, "").strip()
        return cls(
            cache_dir=str(cache_dir or env.get(ENV_CACHE_DIR) or default_cache_dir()),
            download_cache="auto" if flag is None else ("on" if flag else "off"),
            cache_max_bytes=parse_size(budget) if budget else DEFAULT_CACHE_MAX_BYTES,
            cache_link=link,
            cache_verify=bool(_flag(ENV_CACHE_VERIFY)),
            stat_cache=_flag(ENV_STAT_CACHE) is not False,
        )

    def download_cache_enabled(self, store_is_local: bool) -> bool:
        """Downloads go through the cache when it is on; in ``auto`` mode only for stores whose
        bytes are not on this machine already (hard links always come from the cache)."""
        if self.download_cache == "auto" and store_is_local:
            return self.cache_link == "hardlink"
        return self.download_cache != "off"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :meth:`Settings.resolve`."""

    root: str
    database: str
    entity: str = DEFAULT_ENTITY
    project: str = DEFAULT_PROJECT
    machine: MachineSettings = field(default_factory=MachineSettings)
    download_dir: str = "./artifacts"
    storage_options: dict[str, Any] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )  # may hold credentials: never in a repr, so never in a log
    #: The artifact browser's base URL (``https://artifacts.example.com``); None: no browser.
    ui_url: str | None = None

    @property
    def cache_dir(self) -> str:
        return self.machine.cache_dir

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity of the store these settings open (storage options included, and the
        browser URL: the store's settings build ``artifact.url``)."""
        options = tuple(sorted((k, repr(v)) for k, v in self.storage_options.items()))
        return (self.root, self.database, self.machine, options, self.ui_url)

    def with_overrides(self, **overrides: Any) -> Settings:
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "cache_dir" in clean:
            clean["machine"] = replace(self.machine, cache_dir=str(clean.pop("cache_dir")))
        if "ui_url" in clean:
            clean["ui_url"] = check_ui_url(clean["ui_url"])
        return replace(self, **clean) if clean else self

    @classmethod
    def resolve(
        cls,
        root: str | os.PathLike[str] | None = None,
        database: str | None = None,
        entity: str | None = None,
        project: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        download_dir: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        ui_url: str | None = None,
    ) -> Settings:
        env = os.environ
        root_url = str(root or env.get(ENV_ROOT) or default_root())
        protocol, rest = split_protocol(root_url)
        if protocol in LOCAL_PROTOCOLS:
            root_url = str(Path(rest).expanduser().resolve())
        database_url = database or env.get(ENV_DATABASE)
        if not database_url:
            database_url = _default_database(protocol, root_url)
        entity_name = validate_name(entity or env.get(ENV_ENTITY) or DEFAULT_ENTITY)
        project_name = validate_name(project or env.get(ENV_PROJECT) or DEFAULT_PROJECT)
        return cls(
            root=root_url,
            database=database_url,
            entity=entity_name,
            project=project_name,
            machine=MachineSettings.resolve(cache_dir),
            download_dir=str(download_dir or env.get(ENV_DOWNLOAD_DIR) or "./artifacts"),
            storage_options=dict(storage_options or {}),
            ui_url=check_ui_url(ui_url or env.get(ENV_UI_URL) or None),
        )


def check_ui_url(url: str | None) -> str | None:
    """An http(s) base URL without its trailing slash, or None; anything else is refused."""
    if url is None:
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"The artifact browser URL {url!r} ({ENV_UI_URL} or ui_url=) must be an http:// or "
            "https:// URL, such as https://artifacts.example.com."
        )
    return url.rstrip("/")


def _default_database(protocol: str, root_url: str) -> str:
    if protocol in LOCAL_PROTOCOLS:
        return f"sqlite:///{Path(root_url) / 'registry.db'}"
    if protocol == "memory":
        return _memory_database(root_url)
    raise ConfigurationError(
        f"The store {root_url!r} is remote but no registry database is configured. Set "
        f"{ENV_DATABASE} (for example postgresql+psycopg://user@host/db) or pass database=...; "
        "a per-machine registry over a shared bucket would fork version numbers."
    )


_MEMORY_DATABASES: dict[str, tempfile.TemporaryDirectory[str]] = {}


def _memory_database(root_url: str) -> str:
    """A registry that lives and dies with this process, like the ``memory://`` store itself.

    fsspec keeps memory filesystems in process-global state; the registry for one mirrors that
    with a SQLite file in a temporary folder removed at exit (a file, not ``:memory:``, so that
    the run's commit thread and the caller get their own connections).
    """
    folder = _MEMORY_DATABASES.get(root_url)
    if folder is None:
        folder = tempfile.TemporaryDirectory(prefix="dagster-artifacts-memory-registry-")
        _MEMORY_DATABASES[root_url] = folder
    return f"sqlite:///{Path(folder.name) / 'registry.db'}"
