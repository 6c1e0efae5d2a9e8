"""Changing what is kept: ``alias add|rm``, ``delete``, ``prune`` and ``gc``."""

from __future__ import annotations

from datetime import timedelta

import click

from dagster_artifacts.cli import output
from dagster_artifacts.cli.context import (
    DURATION,
    EPILOG,
    Context,
    handle_errors,
    json_option,
    pass_ctx,
)
from dagster_artifacts.errors import ArtifactError, InvalidArgumentError


@click.group("alias", epilog=EPILOG)
def alias_group() -> None:
    """Add or remove aliases of a version."""


@alias_group.command("add", epilog=EPILOG)
@click.argument("name")
@click.argument("alias")
@pass_ctx
@handle_errors
def alias_add(ctx: Context, name: str, alias: str) -> None:
    """Point ALIAS at version NAME:VERSION (moving it from another version)."""
    from dagster_artifacts.names import validate_alias

    validate_alias(alias)
    artifact = ctx.api.artifact(name)
    if alias not in artifact.aliases:
        artifact.aliases.append(alias)
        artifact.save()
    click.echo(f"{artifact.name}: aliases {', '.join(artifact.aliases)}")


@alias_group.command("rm", epilog=EPILOG)
@click.argument("name")
@click.argument("alias")
@pass_ctx
@handle_errors
def alias_rm(ctx: Context, name: str, alias: str) -> None:
    """Remove ALIAS from version NAME:VERSION."""
    artifact = ctx.api.artifact(name)
    if alias not in artifact.aliases:
        raise InvalidArgumentError(
            f"{artifact.name} has no alias {alias!r}; it has {', '.join(artifact.aliases) or 'none'}."
        )
    artifact.aliases.remove(alias)
    artifact.save()
    click.echo(f"{artifact.name}: aliases {', '.join(artifact.aliases) or '-'}")


@click.command("delete", epilog=EPILOG)
@click.argument("name")
@click.option("--force", is_flag=True, help="Also remove the version's aliases.")
@pass_ctx
@handle_errors
def delete_command(ctx: Context, name: str, force: bool) -> None:
    """Delete version NAME:VERSION (bytes are reclaimed by `gc` once nothing else uses them)."""
    artifact = ctx.api.artifact(name)
    if artifact.aliases and not force:
        raise ArtifactError(
            f"{artifact.name} has aliases {', '.join(artifact.aliases)}; move or remove them "
            "(`dagster-artifacts alias rm ...`), or pass --force to delete them with it."
        )
    artifact.delete(delete_aliases=force)
    click.echo(f"Deleted {artifact.qualified_name}; run `dagster-artifacts gc` to free its bytes.")


def _check_keep_last(value: int) -> int:
    if value < 1:
        raise click.BadParameter(
            f"{value} would delete every version, including the one `latest` points to; keep at "
            "least 1 (delete a last version explicitly with `dagster-artifacts delete`).",
            param_hint="'--keep-last'",
        )
    return value


@click.command("prune", epilog=EPILOG)
@click.argument("name")
@click.option(
    "--keep-last",
    type=int,
    required=True,
    callback=lambda _ctx, _param, value: _check_keep_last(value),
    help="Keep the newest N versions (N >= 1; 0 is a usage error, exit 2).",
)
@click.option("--keep-aliased", is_flag=True, help="Also keep every version that has an alias.")
@click.option("--older-than", type=DURATION, help="Only delete versions older than this, e.g. 30d.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; change nothing.")
@json_option
@pass_ctx
@handle_errors
def prune_command(
    ctx: Context,
    name: str,
    keep_last: int,
    keep_aliased: bool,
    older_than: timedelta | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete old versions of artifact NAME, keeping the newest --keep-last."""
    result = ctx.api.prune(
        name, keep_last, keep_aliased=keep_aliased, older_than=older_than, dry_run=dry_run
    )
    if ctx.wants_json(as_json):
        output.emit_json(
            {
                "dry_run": dry_run,
                "deleted": [output.version_json(v) for v in result.deleted],
                "kept": [output.version_json(v) for v in result.kept],
            }
        )
        return
    verb = "Would delete" if dry_run else "Deleted"
    if result.deleted:
        output.table(
            None,
            ["VERSION", "ALIASES", "SIZE", "CREATED"],
            [
                [v.version, ", ".join(v.aliases), output.size(v.size), output.when(v.created_at)]
                for v in result.deleted
            ],
        )
    click.echo(
        f"{verb} {output.plural(len(result.deleted), 'version')} "
        f"({output.size(result.freed_size)}), kept {len(result.kept)}: "
        f"{', '.join(v.version for v in result.kept)}."
        + (
            ""
            if dry_run or not result.deleted
            else " Run `dagster-artifacts gc` to free the bytes."
        )
    )


@click.command("gc", epilog=EPILOG)
@click.option(
    "--grace",
    type=DURATION,
    default="24h",
    show_default=True,
    help="Never delete blobs modified more recently than this (protects concurrent writers).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be freed; delete nothing.")
@json_option
@pass_ctx
@handle_errors
def gc_command(ctx: Context, grace: timedelta, dry_run: bool, as_json: bool) -> None:
    """Delete TTL-expired versions, then blobs and manifests no version references."""
    from dagster_artifacts.progress import status

    with status("Collecting garbage"):
        result = ctx.api.gc(grace=grace, dry_run=dry_run)
    if ctx.wants_json(as_json):
        output.emit_json(result.to_json())
        return
    verb = "Would free" if dry_run else "Freed"
    report = result.to_json()
    if report["expired_versions"]:
        click.echo(
            ("Would expire " if dry_run else "Expired ") + ", ".join(report["expired_versions"])
        )
    click.echo(
        f"{verb} {output.size(result.bytes_freed)}: {output.plural(result.blobs_deleted, 'blob')}, "
        f"{output.plural(result.manifests_deleted, 'manifest')}. Kept "
        f"{output.plural(result.blobs_kept, 'referenced blob')} and "
        f"{output.plural(result.recent_kept, 'unreferenced file')} younger than "
        f"{output.ttl(int(grace.total_seconds())) or '0s'}."
    )
    if result.packs_rewritten or result.packs_deleted:
        click.echo(
            f"Packs: {result.packs_rewritten} rewritten without their dead blobs, "
            f"{result.packs_deleted} retired ones deleted."
        )


@click.command("repack", epilog=EPILOG)
@click.option("--dry-run", is_flag=True, help="Report what would be packed; write nothing.")
@json_option
@pass_ctx
@handle_errors
def repack_command(ctx: Context, dry_run: bool, as_json: bool) -> None:
    """Move loose small blobs into pack files (fewer files and requests; old stores too)."""
    from dagster_artifacts.progress import status

    with status("Packing small blobs"):
        result = ctx.api.repack(dry_run=dry_run)
    if ctx.wants_json(as_json):
        output.emit_json(result.to_json())
        return
    verb = "Would pack" if dry_run else "Packed"
    click.echo(
        f"{verb} {output.plural(result.blobs_packed, 'blob')} "
        f"({output.size(result.bytes_packed)}) into {output.plural(result.packs_written, 'pack')}; "
        f"{output.plural(result.loose_removed, 'loose file')} "
        + ("would be removed." if dry_run else "removed.")
    )
