"""The ``Run`` members of W&B's registry promotion: ``link_artifact`` (link a version into a
collection of links, such as ``model-registry/production-models``) and the model helpers built
on it (``log_model``, ``use_model``, ``link_model``). Mixed into ``Run``, which provides the hooks
at the top; the linking itself is :mod:`dagster_artifacts.links`'.
"""

from __future__ import annotations

import os
import re

from dagster_artifacts.artifact import Artifact, CommitState
from dagster_artifacts.errors import InvalidArgumentError
from dagster_artifacts.names import validate_aliases, validate_name
from dagster_artifacts.store import Store

#: The project W&B's model registry keeps registered models in.
MODEL_REGISTRY = "model-registry"


class PromotionMembers:
    """``link_artifact``, ``log_model``, ``use_model``, ``link_model`` of ``Run`` (mixed in)."""

    # -- hooks Run provides -----------------------------------------------------------------
    store: Store

    @property
    def entity(self) -> str:
        raise NotImplementedError

    @property
    def project(self) -> str:
        raise NotImplementedError

    def log_artifact(
        self,
        artifact_or_path: Artifact | str,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        tags: list[str] | None = None,
        partition_key: str | None = None,
    ) -> Artifact:
        raise NotImplementedError

    def use_artifact(
        self,
        artifact_or_name: Artifact | str,
        type: str | None = None,
        aliases: list[str] | None = None,
        use_as: str | None = None,
    ) -> Artifact:
        raise NotImplementedError

    def _as_artifact(self, value: Artifact | str, name: str | None, type: str | None) -> Artifact:
        raise NotImplementedError

    # -- members ----------------------------------------------------------------------------
    def link_artifact(
        self, artifact: Artifact, target_path: str, aliases: list[str] | None = None
    ) -> Artifact:
        """Link ``artifact`` into the collection ``target_path`` (``[[entity/]project/]name``,
        defaulting to this run's entity and project), logging it first if it is a draft;
        returns the link (see :mod:`dagster_artifacts.links`)."""
        defaults = (self.entity, self.project)
        if artifact.commit_state is CommitState.DRAFT:
            # Check target and aliases before the draft is logged: bad input writes nothing.
            validate_aliases(aliases)
            artifact.link_target(target_path, defaults)
            self.log_artifact(artifact)
        return artifact.link_to(target_path, aliases, defaults)

    def log_model(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        aliases: list[str] | None = None,
    ) -> None:
        """Log the file or folder ``path`` as an artifact of type ``model``."""
        self.log_artifact(os.fspath(path), name=name, type="model", aliases=aliases)

    def use_model(self, name: str) -> str:
        """Use model artifact ``name`` (``name:alias``), download it and return the path (the
        file itself when it holds only one). Its type must contain ``model``, as in W&B."""
        artifact = self.use_artifact(name)
        if "model" not in artifact.type.lower():
            raise InvalidArgumentError(
                f"{artifact.name} has type {artifact.type!r}: use_model() is for artifacts whose "
                "type contains 'model'. Use use_artifact() and download() for others."
            )
        folder = artifact.download()
        inside = os.listdir(folder)
        return os.path.join(folder, inside[0]) if len(inside) == 1 else folder

    def link_model(
        self,
        path: str | os.PathLike[str],
        registered_model_name: str,
        name: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Log ``path`` as a model artifact and link it into the registered model
        ``model-registry/<registered_model_name>`` of this run's entity (W&B's model
        registry); ``aliases`` go on the link. Returns the link."""
        if "/" in registered_model_name:
            raise InvalidArgumentError(
                f"{registered_model_name!r}: give only the registered model's name; it lives "
                "in the project 'model-registry' of the run's entity."
            )
        model_name = name or default_name(os.fspath(path))
        existing = self.store.registry.collection_type(self.entity, self.project, model_name)
        if existing is not None and "model" not in existing.lower():
            raise InvalidArgumentError(
                f"Artifact {model_name!r} has type {existing!r}: link_model() logs artifacts "
                "whose type contains 'model'. Pick another name=."
            )
        model = self._as_artifact(os.fspath(path), model_name, existing or "model")
        target = f"{self.entity}/{MODEL_REGISTRY}/{validate_name(registered_model_name)}"
        return self.link_artifact(model, target, aliases)


def default_name(path: str) -> str:
    """The artifact name a bare path gets: its base name, made a valid name."""
    base = os.path.basename(os.path.normpath(path)) or "artifact"
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", base)[:128]
