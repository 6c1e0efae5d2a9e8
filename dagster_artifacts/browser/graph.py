"""The lineage page: ``Api.lineage``'s tree turned into nodes and edges for the graph library.

Nodes are versions and runs; an edge goes from a version to a run that used it (``used``) and
from a run to a version it logged (``logged``). ``Api.lineage`` already folds runs that did
the same thing (a deduplicated re-run) into one entry with a ``count``: here that becomes one
run node and one edge labelled with the count, so ten re-runs add one edge, not ten. A version
or run reached twice (upstream and downstream, or by two paths) is one node.
"""

from __future__ import annotations

from typing import Any

from dagster_artifacts.browser import links
from dagster_artifacts.browser.pages import Scope, find_version, version_ref
from dagster_artifacts.errors import ArtifactNotFoundError

#: Run groups drawn per version and direction unless ``?breadth=`` asks for more (the
#: default of ``Api.lineage`` and the CLI's ``lineage --breadth``).
DEFAULT_BREADTH = 10


class _Graph:
    def __init__(self, scope: Scope, root: str) -> None:
        self.scope = scope
        self.root = root
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: dict[tuple[str, str], dict[str, Any]] = {}

    def version(self, qualified: str) -> str:
        if qualified not in self.nodes:
            node: dict[str, Any] = {
                "id": qualified,
                "kind": "artifact",
                "label": qualified.rsplit("/", 1)[-1],
                "root": qualified == self.root,
                "url": None,
                "type": None,
            }
            try:
                ref = version_ref(self.scope.api.artifact(qualified))
            except ArtifactNotFoundError:  # deleted since: still drawn, not clickable
                pass
            else:
                node.update(url=ref["url"], type=ref["type"])
                node["lineage_url"] = ref["url"] + "/lineage"
            self.nodes[qualified] = node
        return qualified

    def run(self, entry: dict[str, Any]) -> str:
        run = entry["run"]
        node_id = f"run:{run['path']}"
        if node_id not in self.nodes:
            entity, project, run_id = run["path"].split("/")
            count = entry["count"]
            label = f"{run['name']}\n{run['job_type'] or 'no job type'}"
            if count > 1:
                label += f" · {count} runs"
            self.nodes[node_id] = {
                "id": node_id,
                "kind": "run",
                "label": label,
                "name": run["name"],
                "job_type": run["job_type"],
                "run_id": run_id,
                "runs": [r["id"] for r in entry["runs"]],
                "count": count,
                "root": False,
                "url": links.run_url(entity, project, run_id),
                "dagster_url": links.dagster_run_url(self.scope.dagster_url, run_id, run["group"]),
            }
        return node_id

    def edge(self, source: str, target: str, kind: str, count: int) -> None:
        key = (source, target)
        if key in self.edges:
            self.edges[key]["count"] = max(self.edges[key]["count"], count)
        else:
            self.edges[key] = {
                "id": f"{source}->{target}",
                "source": source,
                "target": target,
                "kind": kind,
                "count": count,
            }

    def upstream(self, version_id: str, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            run_id = self.run(entry)
            self.edge(run_id, version_id, "logged", entry["count"])
            for item in entry["inputs"]:
                input_id = self.version(item["artifact"])
                self.edge(input_id, run_id, "used", entry["count"])
                self.upstream(input_id, item.get("upstream", []))

    def downstream(self, version_id: str, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            run_id = self.run(entry)
            self.edge(version_id, run_id, "used", entry["count"])
            for item in entry["outputs"]:
                output_id = self.version(item["artifact"])
                self.edge(run_id, output_id, "logged", entry["count"])
                self.downstream(output_id, item.get("downstream", []))

    def finish(self) -> dict[str, Any]:
        edges = list(self.edges.values())
        for edge in edges:
            verb = edge["kind"]
            edge["label"] = f"{verb} ×{edge['count']}" if edge["count"] > 1 else verb
        return {"nodes": list(self.nodes.values()), "edges": edges}


def lineage_page(
    scope: Scope,
    entity: str,
    project: str,
    type_name: str,
    name: str,
    index: int,
    depth: int = 2,
    breadth: int = DEFAULT_BREADTH,
) -> dict[str, Any]:
    artifact = find_version(scope, entity, project, type_name, name, index)
    tree = scope.api.lineage(artifact.qualified_name, depth, breadth)
    graph = _Graph(scope, tree["artifact"])
    root = graph.version(tree["artifact"])
    graph.upstream(root, tree["upstream"])
    graph.downstream(root, tree["downstream"])
    hidden = _hidden_groups(tree)
    return {
        "title": f"Lineage of {artifact.name}",
        **version_ref(artifact),
        "entity": entity,
        "project": project,
        "depth": depth,
        "breadth": breadth,
        "hidden_run_groups": hidden,
        "graph": graph.finish(),
        "version_url": version_ref(artifact)["url"],
    }


def _hidden_groups(node: dict[str, Any]) -> int:
    """Run groups left out anywhere by ``breadth`` (the page says so, and how to see them)."""
    total = int(node.get("upstream_more", 0)) + int(node.get("downstream_more", 0))
    for entry in node.get("upstream", []):
        total += sum(_hidden_groups(item) for item in entry["inputs"])
    for entry in node.get("downstream", []):
        total += sum(_hidden_groups(item) for item in entry["outputs"])
    return total
