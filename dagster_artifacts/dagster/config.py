"""The ``"artifact"`` metadata config (DESIGN.md section 5), checked before anything is written."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from dagster_artifacts.errors import ConfigurationError

SERIALIZERS = ("pickle", "cloudpickle", "joblib")


class OutputConfig(BaseModel):
    """Output config: how an asset output becomes an artifact version."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    type: str | None = None
    description: str | None = None
    aliases: list[str] = []
    job_type: str | None = None
    serializer: Literal["pickle", "cloudpickle", "joblib"] | None = None


class InputConfig(BaseModel):
    """Input config: which version an input loads (``latest`` when neither is given)."""

    model_config = ConfigDict(extra="forbid")
    version: str | None = None
    alias: str | None = None


def _parse(model: type[BaseModel], raw: Any, where: str) -> Any:
    allowed = ", ".join(model.model_fields)
    if raw is None:
        return model()
    if not isinstance(raw, dict):
        raise ConfigurationError(
            f"{where}: metadata['artifact'] must be a dict with keys {allowed}, got "
            f"{type(raw).__name__}."
        )
    unknown = sorted(set(raw) - set(model.model_fields))
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key(s) {unknown} under metadata['artifact']; "
            f"allowed keys are: {allowed}."
        )
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise ConfigurationError(
            f"{where}: invalid metadata['artifact'] ({error.errors()[0]['msg']}); "
            f"allowed keys are: {allowed}."
        ) from None


def output_config(raw: Any, where: str) -> OutputConfig:
    return _parse(OutputConfig, raw, where)


def input_config(raw: Any, where: str) -> InputConfig:
    config: InputConfig = _parse(InputConfig, raw, where)
    if config.version and config.alias:
        raise ConfigurationError(
            f"{where}: metadata['artifact'] pins both version and alias; give only one."
        )
    return config
