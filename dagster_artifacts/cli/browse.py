"""Looking around: ``ls``, ``versions``, ``show``, ``runs`` and ``lineage``."""

from __future__ import annotations

import json
from typing import Any

import click

from dagster_artifacts.cli import output
from dagster_artifacts.cli.context import (
    EPILOG,
    Context,
    artifact_name_only,
    handle_errors,
    json_option,
    pass_ctx,
)


@click.command("ls", epilog=EPILOG)
@click.option("--type", "type_name", help="Only artifacts of this type.")
@click.option("--all-projects", is_flag=True, help="Every project in the registry.")
@click.option("--projects", "list_projects", is_flag=True, help="List projects instead.")
@click.option("--types", "list_types", is_flag=True, help="List artifact types instead.")
@json_option
@pass_ctx
@handle_errors
def ls_command(
    ctx: Context,
    type_name: str | None,
    all_projects: bool,
    list_projects: bool,
    list_types: bool,
    as_json: bool,
) -> None:
    """List artifacts with their version counts and sizes (or projects, or types)."""
    api = ctx.api
    if list_projects:
        projects = api.projects()
        if ctx.wants_json(as_json):
            output.emit_json([{"entity": e, "project": p} for e, p in projects])
        else:
            output.table(None, ["ENTITY", "PROJECT"], projects)
        return
    scopes = (
        [f"{e}/{p}" for e, p in api.projects()]
        if all_projects
        else [f"{api.default_entity}/{api.default_project}"]
    )
    if list_types:
        types = sorted({t for scope in scopes for t in api.artifact_types(scope)})
        if ctx.wants_json(as_json):
            output.emit_json(types)
        else:
            output.table(None, ["TYPE"], [[t] for t in types])
        return
    collections = [c for scope in scopes for c in api.artifact_collections(scope, type_name)]
    if not collections and not ctx.wants_json(as_json):
        where = "the registry" if all_projects else f"project {scopes[0]}"
        hint = "" if all_projects else f" {ctx.where_else(None)}"
        click.echo(f"No artifacts in {where}.{hint}", err=True)
        return
    if ctx.wants_json(as_json):
        output.emit_json(
            [
                {
                    "entity": c.entity,
                    "project": c.project,
                    "name": c.name,
                    "type": c.type,
                    "versions": c.version_count,
                    "size": c.size,
                }
                for c in collections
            ]
        )
        return
    output.table(
        None,
        ["PROJECT", "NAME", "TYPE", "VERSIONS", "SIZE"],
        [
            [f"{c.entity}/{c.project}", c.name, c.type, c.version_count, output.size(c.size)]
            for c in collections
        ],
    )


@click.command("versions", epilog=EPILOG)
@click.argument("name")
@json_option
@pass_ctx
@handle_errors
def versions_command(ctx: Context, name: str, as_json: bool) -> None:
    """List the versions of artifact NAME, oldest first."""
    versions = ctx.api.artifact_versions(name=artifact_name_only(name))
    if not versions:
        ctx.api.artifact(f"{name}:latest")  # raises, naming what exists
    if ctx.wants_json(as_json):
        output.emit_json([output.version_json(v) for v in versions])
        return
    partitioned = any(v.partition_key is not None for v in versions)
    output.table(
        None,
        ["VERSION", "ALIASES", *(["PARTITION"] if partitioned else []), "FILES", "SIZE"]
        + ["DIGEST", "CREATED", "TTL"],
        [
            [
                v.version,
                ", ".join(v.aliases),
                *([v.partition_key or ""] if partitioned else []),
                v.file_count,
                output.size(v.size),
                v.digest[:12],
                output.when(v.created_at),
                output.ttl(output.ttl_seconds(v)),
            ]
            for v in versions
        ],
    )


@click.command("show", epilog=EPILOG)
@click.argument("name")
@json_option
@pass_ctx
@handle_errors
def show_command(ctx: Context, name: str, as_json: bool) -> None:
    """Show NAME:ALIAS: manifest, metadata, aliases, producer run and consumers."""
    artifact = ctx.api.artifact(name)
    producer = artifact.logged_by()
    consumers = artifact.used_by()
    entries = sorted(artifact.manifest.entries.values(), key=lambda e: e.path)
    if ctx.wants_json(as_json):
        data = output.version_json(artifact)
        data["files"] = [
            {"path": e.path, "digest": e.digest, "size": e.size, "ref": e.ref} for e in entries
        ]
        data["logged_by"] = output.run_json(producer) if producer else None
        data["used_by"] = [output.run_json(r) for r in consumers]
        output.emit_json(data)
        return
    console = output.console()
    console.print(f"[bold]{artifact.qualified_name}[/bold]  type={artifact.type}")
    console.print(f"  aliases:     {', '.join(artifact.aliases) or '-'}")
    if artifact.partition_key is not None:
        console.print(f"  partition:   {artifact.partition_key}")
    console.print(f"  digest:      {artifact.digest}")
    console.print(
        f"  size:        {output.size(artifact.size)} in "
        f"{output.plural(artifact.file_count, 'file')}"
    )
    console.print(f"  created:     {output.when(artifact.created_at)}")
    if artifact.ttl:
        console.print(f"  ttl:         {output.ttl(output.ttl_seconds(artifact))}")
    if artifact.description:
        console.print(f"  description: {artifact.description}")
    if artifact.metadata:
        console.print(f"  metadata:    {json.dumps(artifact.metadata, sort_keys=True)}")
    console.print(
        f"  logged by:   {producer.name} ({producer.job_type}, run {producer.id})"
        if producer
        else "  logged by:   -"
    )
    console.print(
        "  used by:     "
        + (
            ", ".join(f"{r.name} ({r.job_type}, run {r.id})" for r in consumers)
            if consumers
            else "-"
        )
    )
    output.table(
        None,
        ["PATH", "SIZE", "DIGEST"],
        [[e.path, output.size(e.size or 0), e.ref or e.digest] for e in entries],
    )


@click.command("runs", epilog=EPILOG)
@click.option("--job-type", help="Only runs of this job type.")
@click.option("--group", help="Only runs of this group.")
@json_option
@pass_ctx
@handle_errors
def runs_command(ctx: Context, job_type: str | None, group: str | None, as_json: bool) -> None:
    """List the runs of the project, with what each logged and used."""
    filters = {key: value for key, value in (("job_type", job_type), ("group", group)) if value}
    rows = []
    for run in ctx.api.runs(filters=filters):
        data = output.run_json(run)
        data["logged"] = [a.name for a in run.logged_artifacts()]
        data["used"] = [a.name for a in run.used_artifacts()]
        rows.append(data)
    if ctx.wants_json(as_json):
        output.emit_json(rows)
        return
    output.table(
        None,
        ["RUN", "NAME", "JOB TYPE", "STATE", "CREATED", "LOGGED", "USED"],
        [
            [
                r["id"],
                r["name"],
                r["job_type"],
                r["state"],
                output.when(r["created_at"]),
                ", ".join(r["logged"]),
                ", ".join(r["used"]),
            ]
            for r in rows
        ],
    )


@click.command("lineage", epilog=EPILOG)
@click.argument("name")
@click.option(
    "--depth", type=click.IntRange(min=1), default=3, show_default=True, help="Levels each way."
)
@click.option(
    "--breadth",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Run groups shown per version and direction.",
)
@json_option
@pass_ctx
@handle_errors
def lineage_command(ctx: Context, name: str, depth: int, breadth: int, as_json: bool) -> None:
    """Upstream and downstream runs and artifacts of NAME:VERSION, as a tree (re-runs that were
    deduplicated fold into one line)."""
    data = ctx.api.lineage(name, depth, breadth)
    if ctx.wants_json(as_json):
        output.emit_json(data)
        return
    from rich.tree import Tree

    def run_label(entry: dict[str, Any]) -> str:
        run = entry["run"]
        label = f"run {run['id']} [dim]({run['name']}, {run['job_type'] or 'no job type'})[/dim]"
        others = entry["count"] - 1
        return label + (f" and {output.plural(others, 're-run')}" if others else "")

    def more(node: Tree, parent: dict[str, Any], key: str) -> None:
        hidden = parent.get(f"{key}_more", 0)
        if hidden:
            node.add(f"[dim]... {output.plural(hidden, 'more run group')} (--breadth)[/dim]")

    def add_up(node: Tree, parent: dict[str, Any]) -> None:
        for entry in parent["upstream"]:
            branch = node.add(f"logged by {run_label(entry)}")
            for item in entry["inputs"]:
                add_up(branch.add(f"used [cyan]{item['artifact']}[/cyan]"), item)
        more(node, parent, "upstream")

    def add_down(node: Tree, parent: dict[str, Any]) -> None:
        for entry in parent["downstream"]:
            branch = node.add(f"used by {run_label(entry)}")
            for item in entry["outputs"]:
                add_down(branch.add(f"logged [cyan]{item['artifact']}[/cyan]"), item)
        more(node, parent, "downstream")

    tree = Tree(f"[bold cyan]{data['artifact']}[/bold cyan]")
    up = tree.add("[bold]upstream[/bold]")
    add_up(up, data)
    if not data["upstream"]:
        up.add("[dim]none[/dim]")
    down = tree.add("[bold]downstream[/bold]")
    add_down(down, data)
    if not data["downstream"]:
        down.add("[dim]none[/dim]")
    output.console().print(tree)
