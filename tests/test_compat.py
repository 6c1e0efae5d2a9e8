"""The README's "W&B API coverage" table against W&B's members and this package.

Every public member of W&B 0.31's ``Artifact``, ``Run`` and ``Api`` is in the table once; a
member marked *same* or *differs* exists here; one marked *not applicable* raises
``NotApplicableMemberError`` (an ``AttributeError`` too) with its reason, from
:mod:`dagster_artifacts.compat`. W&B's member lists are the ``dir()`` of wandb 0.31.0 (written
down below); when the benchmark peers' virtualenv holds wandb, the test also reads them live.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import dagster_artifacts as wandb
from dagster_artifacts import compat
from dagster_artifacts.errors import NotApplicableMemberError

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PEERS_PYTHON = REPO / "benchmarks" / ".venv-peers" / "bin" / "python"

#: ``[n for n in dir(cls) if not n.startswith("_")]`` in wandb 0.31.0.
WANDB_MEMBERS = {
    "Artifact": """add add_dir add_file add_reference aliases checkout collection commit_hash
        created_at delete description digest digest_algorithm distributed_id download entity
        file file_count files finalize get get_added_local_path_name get_entry get_path
        history_step id incremental is_draft is_link json_encode link linked_artifacts linked_at
        logged_by manifest metadata name new_draft new_file project qualified_name remove save
        size source_artifact source_collection source_entity source_name source_project
        source_qualified_name source_version state tags ttl type unlink updated_at url use_as
        used_by verify version wait""",
    "Run": """alert config config_static define_metric dir disabled display entity finish
        finish_artifact group id job_type link_artifact link_model log log_artifact log_code
        log_model mark_preempting name notes offline path pin_config_keys project project_url
        restore resumed save settings start_time starting_step status step sweep_id sweep_url
        sync_dir tags to_html unwatch upsert_artifact url use_artifact use_model watch
        write_logs""",
    "Api": """artifact artifact_collection artifact_collection_exists artifact_collections
        artifact_exists artifact_type artifact_types artifact_versions artifacts automation
        automations create_automation create_custom_chart create_project create_registry
        create_run create_run_queue create_team create_user default_entity delete_automation
        flush from_path integrations job list_jobs organization project projects queued_run
        registries registry reports run run_queue runs slack_integrations sweep
        sync_tensorboard team update_automation upsert_run_queue user user_agent users viewer
        webhook_integrations""",
}
TABLES = {"Artifact": compat.ARTIFACT, "Run": compat.RUN, "Api": compat.API}
#: Members a W&B object sets per instance (not in ``dir()`` of its class), also in the table.
INSTANCE_MEMBERS = {"Artifact": set(), "Run": {"summary"}, "Api": set()}


def readme_table() -> dict[str, dict[str, str]]:
    """``{"Artifact": {"add": "same", ...}, ...}`` from the README's coverage table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### W&B API coverage", 1)[1].split("\n## ", 1)[0]
    found: dict[str, dict[str, str]] = {"Artifact": {}, "Run": {}, "Api": {}}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for owner, member in re.findall(r"`(Artifact|Run|Api)\.(\w+)`", cells[0]):
            assert member not in found[owner], f"{owner}.{member} is in the table twice"
            found[owner][member] = cells[1]
    return found


def instances() -> dict[str, object]:
    with wandb.init(job_type="t") as run:
        artifact = wandb.Artifact("a", type="dataset")
        with artifact.new_file("f") as handle:
            handle.write("f")
        run.log_artifact(artifact).wait()
    return {"Artifact": artifact, "Run": run, "Api": wandb.Api()}


def test_every_wandb_member_is_in_the_table_once() -> None:
    table = readme_table()
    for owner, members in WANDB_MEMBERS.items():
        assert set(table[owner]) == set(members.split()) | INSTANCE_MEMBERS[owner], owner
        assert set(table[owner].values()) <= {"same", "differs", "not applicable"}


def test_members_are_what_the_table_says() -> None:
    table = readme_table()
    objects = instances()
    for owner, members in table.items():
        target = objects[owner]
        for member, status in members.items():
            if status == "not applicable":
                assert member in TABLES[owner], f"{owner}.{member} is not in compat.py"
                with pytest.raises(NotApplicableMemberError, match=rf"{owner}\.{member} is a W&B"):
                    getattr(target, member)
                assert not hasattr(target, member)
            else:
                assert member in dir(type(target)), f"{owner}.{member} is missing"
                assert member not in TABLES[owner]
    for owner, reasons in TABLES.items():
        assert set(reasons) <= set(table[owner]), f"compat.py lists {owner} members W&B has not"


def test_an_unknown_member_is_a_plain_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'typo'") as raised:
        _ = wandb.Artifact("a", type="dataset").typo  # type: ignore[attr-defined]
    assert not isinstance(raised.value, NotApplicableMemberError)


def test_finalize_freezes_the_files_of_a_draft() -> None:
    artifact = wandb.Artifact("a", type="dataset")
    with artifact.new_file("f") as handle:
        handle.write("f")
    artifact.finalize()
    with pytest.raises(wandb.errors.ArtifactFinalizedError, match="finalized"):
        artifact.remove("f")
    with wandb.init(job_type="t") as run:
        assert run.log_artifact(artifact).wait().name == "a:v0"
    assert artifact.history_step is None


@pytest.mark.skipif(not PEERS_PYTHON.exists(), reason="no benchmarks/.venv-peers with wandb")
def test_written_down_members_are_wandbs_own() -> None:  # pragma: no cover - optional
    script = (
        "import json, wandb\n"
        "from wandb.sdk.artifacts.artifact import Artifact\n"
        "from wandb.apis.public import Api\n"
        "from wandb.sdk.wandb_run import Run\n"
        "print(json.dumps([wandb.__version__, {c.__name__: sorted(n for n in dir(c) "
        "if not n.startswith('_')) for c in (Artifact, Run, Api)}]))"
    )
    result = subprocess.run(
        [str(PEERS_PYTHON), "-c", script], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip("wandb does not import in benchmarks/.venv-peers")
    version, live = json.loads(result.stdout.strip().splitlines()[-1])
    if not version.startswith("0.31."):
        pytest.skip(f"benchmarks/.venv-peers has wandb {version}, the table is for 0.31")
    for owner, members in WANDB_MEMBERS.items():
        assert sorted(members.split()) == live[owner], owner
