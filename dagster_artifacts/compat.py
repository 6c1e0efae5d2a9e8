"""W&B members that have no meaning for a self-hosted artifact store, and why.

``Artifact``, ``Run`` and ``Api`` look a missing attribute up here (their ``__getattr__``): a W&B
member listed below raises :class:`~.errors.NotApplicableMemberError` saying why it does not
apply and what to use instead, rather than a bare ``AttributeError`` that reads like a typo. The
error is also an ``AttributeError``, so ``hasattr(run, "log")`` stays False and code that probes
for W&B features falls back as it would with an older W&B.

The README's "W&B API coverage" table lists the same members; ``tests/test_compat.py`` checks
both against each other and against the members W&B 0.31 has.
"""

from __future__ import annotations

from typing import NoReturn

from dagster_artifacts.errors import NotApplicableMemberError

_METRICS = (
    "dagster-artifacts versions artifacts and records lineage; it keeps no run history of "
    "metrics. Record metrics in Dagster (asset metadata, MaterializeResult) or in the "
    "artifact's metadata."
)
_SERVER = "it is a feature of the W&B server and web app, which this self-hosted store has not"
_FILES = (
    "runs here have no files of their own: put files in an artifact (artifact.add_file, "
    "add_dir) and log it"
)
_ACCOUNTS = (
    "there are no users, teams or organizations: entities are names, and access is the "
    "storage's and database's own (bucket policies, database roles)"
)
_LAUNCH = "W&B Launch (queues, jobs) has no counterpart: Dagster runs the jobs"
_AUTOMATIONS = (
    "W&B automations and integrations have no counterpart: use a Dagster sensor on the "
    "registry (Api().artifacts(...)) to react to new versions or aliases"
)
_REGISTRY_OBJECTS = (
    "a registry here is a project named wandb-registry-<name> (or any project): link into it "
    "with artifact.link('wandb-registry-model/<collection>') and list it with "
    "Api().artifact_collections('wandb-registry-model')"
)

#: ``Artifact`` members of W&B with no meaning here -> why, and what to do instead.
ARTIFACT: dict[str, str] = {
    "commit_hash": "W&B's server-side commit hash; a version here is known by its digest "
    "(artifact.digest) and its id",
    "json_encode": "it serializes an artifact into a W&B run history row; " + _METRICS,
    "distributed_id": "pass distributed_id= to run.upsert_artifact() / run.finish_artifact() "
    "(or share the run group), which is where parallel writers meet here",
    "get_added_local_path_name": "staged files are not mapped back to their source path; "
    "artifact.manifest.entries lists the names given to add_file / add_dir",
}

#: ``Run`` members of W&B with no meaning here.
RUN: dict[str, str] = {
    **dict.fromkeys(
        (
            "log",
            "define_metric",
            "watch",
            "unwatch",
            "step",
            "starting_step",
            "alert",
            "summary",
            "config_static",
            "pin_config_keys",
        ),
        _METRICS,
    ),
    **dict.fromkeys(
        ("url", "project_url", "sweep_id", "sweep_url", "to_html", "display", "notes", "tags"),
        _SERVER,
    ),
    **dict.fromkeys(("save", "restore", "log_code", "dir", "sync_dir", "write_logs"), _FILES),
    **dict.fromkeys(
        ("offline", "disabled", "resumed", "mark_preempting", "status", "start_time"),
        "runs here are registry records written as artifacts are logged and used, with no "
        "process-level mode, resume or preemption state; run.state, run.created_at and "
        "run.config are what they keep",
    ),
}

#: ``Api`` members of W&B with no meaning here.
API: dict[str, str] = {
    **dict.fromkeys(
        (
            "automation",
            "automations",
            "create_automation",
            "update_automation",
            "delete_automation",
            "integrations",
            "slack_integrations",
            "webhook_integrations",
        ),
        _AUTOMATIONS,
    ),
    **dict.fromkeys(
        ("create_run_queue", "upsert_run_queue", "run_queue", "queued_run", "job", "list_jobs"),
        _LAUNCH,
    ),
    **dict.fromkeys(
        ("create_team", "team", "create_user", "user", "users", "viewer", "organization"),
        _ACCOUNTS,
    ),
    **dict.fromkeys(
        ("create_custom_chart", "reports", "sweep", "sync_tensorboard", "user_agent"), _SERVER
    ),
    **dict.fromkeys(("registries", "registry", "create_registry"), _REGISTRY_OBJECTS),
    "create_project": "projects are created by logging into them (wandb.init(project=...))",
    "project": "projects are names here: Api().projects() lists (entity, project) pairs",
    "create_run": "runs are created by wandb.init(); Api().run(path) reads one",
    "from_path": "use Api().artifact(path) or Api().run(path)",
}


def refuse(owner: str, table: dict[str, str], name: str) -> NoReturn:
    """What ``owner.__getattr__(name)`` raises: the reason for a W&B member, else the usual
    ``AttributeError``."""
    reason = table.get(name)
    if reason is None:
        raise AttributeError(f"{owner!r} object has no attribute {name!r}")
    raise NotApplicableMemberError(
        f"{owner}.{name} is a W&B member that does not apply to dagster-artifacts: {reason}."
    )
