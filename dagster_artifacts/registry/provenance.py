"""Runs and lineage: which run logged or used which version.

Plain functions over an open :class:`~sqlalchemy.orm.Session`; :class:`~.registry.Registry`
gives each its own transaction. Lineage edges are idempotent (one per run, version and
direction), so a retried transaction or a re-log never duplicates one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dagster_artifacts.errors import RunNotFoundError
from dagster_artifacts.registry.models import (
    COMMITTED,
    LineageRow,
    ProjectRow,
    RunRow,
    VersionRow,
    utcnow,
)
from dagster_artifacts.registry.queries import (
    VERSION_COLUMNS,
    in_project,
    project_row,
    run_record,
    run_record_by_id,
    version_records,
)
from dagster_artifacts.registry.records import RunRecord, VersionRecord


def create_run(
    session: Session,
    entity: str,
    project: str,
    run_id: str,
    name: str,
    job_type: str | None,
    group: str | None,
    config: dict[str, Any],
) -> RunRecord:
    """Record a new run, or mark an existing ``run_id`` running again (a resume)."""
    project_found = project_row(session, entity, project, create=True)
    assert project_found is not None
    existing = session.get(RunRow, run_id)
    if existing is None:
        existing = RunRow(
            id=run_id,
            project_id=project_found.id,
            name=name,
            job_type=job_type,
            group=group,
            config=config,
            state="running",
        )
        session.add(existing)
        session.flush()
    else:  # resume, as wandb.init(id=..., resume=True) does
        existing.state = "running"
        existing.finished_at = None
    return run_record(existing, entity, project)


def finish_run(session: Session, run_id: str, state: str) -> None:
    """Set the final state of a run (an unknown id changes nothing)."""
    session.execute(
        update(RunRow).where(RunRow.id == run_id).values(state=state, finished_at=utcnow())
    )


def get_run(session: Session, run_id: str, entity: str | None, project: str | None) -> RunRecord:
    """The run ``run_id``, only if it is in ``entity``/``project`` when those are given."""
    query = select(RunRow, ProjectRow).join(ProjectRow).where(RunRow.id == run_id)
    if entity:
        query = query.where(ProjectRow.entity == entity)
    if project:
        query = query.where(ProjectRow.name == project)
    row = session.execute(query).first()
    if row is None:
        where = f" in {entity}/{project}" if entity and project else ""
        raise RunNotFoundError(
            f"No run {run_id!r}{where}; list runs with Api().runs() to find its id."
        )
    return run_record(row[0], row[1].entity, row[1].name)


def list_runs(
    session: Session, entity: str, project: str, job_type: str | None, group: str | None
) -> list[RunRecord]:
    """Runs of one project, oldest first, optionally of one job type and group."""
    query = in_project(select(RunRow), entity, project).order_by(RunRow.created_at, RunRow.id)
    if job_type:
        query = query.where(RunRow.job_type == job_type)
    if group:
        query = query.where(RunRow.group == group)
    return [run_record(run, entity, project) for run in session.scalars(query)]


def add_edge(session: Session, run_id: str, version_id: int, direction: str) -> None:
    """Record that ``run_id`` logged or used ``version_id``, unless it is recorded already."""
    exists = session.scalar(
        select(LineageRow.id).where(
            LineageRow.run_id == run_id,
            LineageRow.version_id == version_id,
            LineageRow.direction == direction,
        )
    )
    if exists is None:
        session.add(LineageRow(run_id=run_id, version_id=version_id, direction=direction))
        session.flush()


def edge_runs(session: Session, version_id: int, direction: str) -> list[RunRecord]:
    """The runs with a ``direction`` edge to ``version_id``, in the order they were recorded."""
    run_ids = session.scalars(
        select(LineageRow.run_id)
        .where(LineageRow.version_id == version_id, LineageRow.direction == direction)
        .order_by(LineageRow.id)
    )
    return [run_record_by_id(session, run_id) for run_id in run_ids]


def logged_by(session: Session, version_id: int) -> RunRecord | None:
    """The run that first logged ``version_id`` (None if unknown or the run was deleted)."""
    version = session.get(VersionRow, version_id)
    if version is None or version.producer_run_id is None:
        return None
    return run_record_by_id(session, version.producer_run_id)


def run_versions(session: Session, run_id: str, direction: str) -> list[VersionRecord]:
    """The committed versions ``run_id`` logged or used, in the order it did."""
    query = (
        select(*VERSION_COLUMNS)
        .join(LineageRow, LineageRow.version_id == VersionRow.id)
        .where(
            LineageRow.run_id == run_id,
            LineageRow.direction == direction,
            VersionRow.state == COMMITTED,
        )
        .order_by(LineageRow.id)
    )
    return version_records(session, list(session.execute(query)))
