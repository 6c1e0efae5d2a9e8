"""Links in the registry under concurrent writers, on SQLite and PostgreSQL: one membership
per source and collection, one index per link, aliases held by one link at a time, and a
source deleted while it is linked takes its links with it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from dagster_artifacts.errors import ArtifactNotFoundError
from dagster_artifacts.registry import CommitRequest, Registry, VersionRecord


@pytest.fixture
def registry(registry_url: str) -> Iterator[Registry]:
    opened = Registry(registry_url)
    yield opened
    opened.dispose()


def _commit(registry: Registry, digest: str) -> VersionRecord:
    record, _ = registry.commit_version(
        CommitRequest(
            entity="e",
            project="p",
            name="model",
            type="model",
            digest=digest,
            manifest_key=f"manifests/{digest}.json",
            size=1,
            file_count=1,
        )
    )
    return record


def _together(count: int, work: Callable[[int], object]) -> list[object]:
    results: list[object] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except BaseException as error:  # reported by the caller
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_links_of_one_version_make_one_link(registry: Registry) -> None:
    source = _commit(registry, "d0")
    results = _together(
        6, lambda i: registry.link_version(source.id, "e", "reg", "models", [f"a{i}"])
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    links = {r[0].id for r in results}  # type: ignore[index]
    assert len(links) == 1
    assert sum(bool(r[1]) for r in results) == 1  # type: ignore[index]
    versions = registry.list_versions("e", "reg", "models")
    assert [v.index for v in versions] == [0]
    assert set(versions[0].aliases) == {"latest", *(f"a{i}" for i in range(6))}


def test_concurrent_links_of_many_versions_get_distinct_indexes(registry: Registry) -> None:
    sources = [_commit(registry, f"d{i}") for i in range(6)]
    results = _together(
        6, lambda i: registry.link_version(sources[i].id, "e", "reg", "models", ["production"])
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    versions = registry.list_versions("e", "reg", "models")
    assert sorted(v.index for v in versions) == list(range(6))
    holders = [v for v in versions if "production" in v.aliases]
    assert len(holders) == 1  # an alias names one link at a time
    assert registry.resolve("e", "reg", "models", "production").id == holders[0].id


def test_linking_while_the_source_is_deleted(registry: Registry) -> None:
    """Either the link lands first and goes with the source, or linking finds the source
    gone: never a link to a deleted version."""
    for attempt in range(5):
        source = _commit(registry, f"gone{attempt}")
        results = _together(
            2,
            lambda i, source=source: (
                registry.link_version(source.id, "e", "reg", "models", [])
                if i == 0
                else registry.delete_version(source.id, delete_aliases=True)
            ),
        )
        link_outcome = results[0]
        assert link_outcome is None or isinstance(link_outcome, (tuple, ArtifactNotFoundError)), (
            link_outcome
        )
        assert not isinstance(results[1], BaseException), results[1]
        assert registry.linked_versions(source.id) == []
        for version in registry.list_versions("e", "reg", "models"):
            assert version.source is not None and version.source.id != source.id
