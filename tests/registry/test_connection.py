"""The transaction runner: what is retried, how often, and the error each failure becomes.

Failures are injected as the driver errors SQLAlchemy would raise, so every branch runs in
milliseconds and without a server; real races and outages are in ``test_registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from dagster_artifacts.errors import ArtifactNotFoundError, RegistryError
from dagster_artifacts.registry.connection import (
    is_transient,
    open_engine,
    redact,
    run_transaction,
)

URL = "postgresql+psycopg://alice:s3cret@db.example/registry"


class Failing:
    """Work that fails with ``error`` the first ``times`` calls, then returns "done"."""

    def __init__(self, error: BaseException, times: int) -> None:
        self.error = error
        self.times = times
        self.calls = 0

    def __call__(self, _session: Session) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "done"


def _run(work: Failing, attempts: int = 3) -> str:
    engine = create_engine("sqlite://")
    try:
        return run_transaction(engine, work, attempts=attempts, url=URL)
    finally:
        engine.dispose()


def _locked() -> OperationalError:
    return OperationalError("INSERT ...", {}, Exception("database is locked"))


def _dropped() -> OperationalError:
    return OperationalError("SELECT ...", {}, Exception("server closed the connection"))


def test_a_race_is_retried_until_it_is_won() -> None:
    work = Failing(_locked(), times=2)
    assert _run(work, attempts=3) == "done"
    assert work.calls == 3


def test_a_race_lost_every_time_names_the_attempts_not_the_password() -> None:
    work = Failing(_locked(), times=99)
    with pytest.raises(RegistryError, match="kept losing races after 3 attempts") as caught:
        _run(work, attempts=3)
    assert work.calls == 3
    assert "s3cret" not in str(caught.value) and "db.example/registry" in str(caught.value)


def test_a_lost_connection_says_nothing_was_half_committed() -> None:
    work = Failing(_dropped(), times=99)
    with pytest.raises(RegistryError, match="Lost the registry database .* after 2 attempts"):
        _run(work, attempts=2)
    assert work.calls == 2


def test_a_non_race_error_is_not_retried() -> None:
    error = IntegrityError("INSERT ...", {}, Exception("FOREIGN KEY constraint failed"))
    work = Failing(error, times=99)
    with pytest.raises(RegistryError, match="Registry error on"):
        _run(work)
    assert work.calls == 1


def test_errors_of_the_work_itself_pass_through_untouched() -> None:
    work = Failing(ArtifactNotFoundError("gone"), times=99)
    with pytest.raises(ArtifactNotFoundError, match="gone"):
        _run(work)
    assert work.calls == 1


def test_what_counts_as_transient() -> None:
    unique = IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: x"))
    assert is_transient(unique) and is_transient(_locked()) and is_transient(_dropped())
    assert not is_transient(DBAPIError("SELECT ...", {}, Exception("syntax error")))
    assert not is_transient(ValueError("not a database error"))


def test_redact_hides_the_password() -> None:
    assert redact(URL) == "postgresql+psycopg://alice:***@db.example/registry"


@pytest.mark.parametrize(
    ("make_bad_place", "cause"),
    [
        (lambda tmp: (tmp / "registry.db").mkdir(), "is a folder, not a database file"),
        (
            lambda tmp: (tmp / "registry.db").write_bytes(b"not sqlite " * 200),
            "may not be a SQLite",
        ),
    ],
    ids=["path-is-a-folder", "file-is-not-sqlite"],
)
def test_a_registry_file_that_cannot_open_names_the_cause(
    tmp_path: Path, make_bad_place: Callable[[Path], object], cause: str
) -> None:
    make_bad_place(tmp_path)
    with pytest.raises(RegistryError, match=cause) as caught:
        open_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    assert "check that it is running" not in str(caught.value).lower()


def test_a_registry_whose_folder_is_a_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "parent").write_text("a file where the registry's folder should be")
    before = (tmp_path / "parent").read_text()
    with pytest.raises(RegistryError, match="Cannot create the folder") as caught:
        open_engine(f"sqlite:///{tmp_path / 'parent' / 'registry.db'}")
    assert str(tmp_path / "parent") in str(caught.value)
    assert (tmp_path / "parent").read_text() == before  # nothing was written over it
