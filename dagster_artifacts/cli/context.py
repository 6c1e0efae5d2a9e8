"""What every command shares: the global options as a lazily built ``Api``, the error handling
(one line on stderr, documented exit codes) and the option types."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from dagster_artifacts.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    InvalidPathError,
)
from dagster_artifacts.units import parse_duration, parse_size

if TYPE_CHECKING:
    from dagster_artifacts.api import Api

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

EPILOG = (
    "Exit codes: 0 success; 1 failure (unknown artifact or version, refused delete, "
    "checksum mismatch, storage error); 2 usage (bad option, malformed NAME:ALIAS, "
    "--keep-last 0)."
)
USAGE_ERRORS = (InvalidNameError, InvalidPathError, InvalidArgumentError)


class Context:
    """The global options, and the ``Api`` they open (built on first use: ``--help`` and usage
    errors never touch the store)."""

    def __init__(self, options: dict[str, Any], as_json: bool) -> None:
        self.options = {k: v for k, v in options.items() if v is not None}
        self.as_json = as_json
        self._api: Api | None = None

    @property
    def api(self) -> Api:
        if self._api is None:
            from dagster_artifacts.api import Api

            self._api = Api(**self.options)
        return self._api

    def wants_json(self, as_json: bool) -> bool:
        return as_json or self.as_json

    def where_else(self, name: str | None) -> str:
        """Where to look instead, as the flags to type: the projects holding an artifact called
        ``name`` (or, without one, holding any artifact)."""
        api = self.api
        here = (api.default_entity, api.default_project)
        others = [scope for scope in api.projects() if scope != here]
        if not others:
            return "" if name else "The registry holds no artifacts yet."
        base = name.split(":", 1)[0].rsplit("/", 1)[-1] if name else None
        if base is not None:
            holders = [
                (entity, project)
                for entity, project in others
                if any(c.name == base for c in api.artifact_collections(f"{entity}/{project}"))
            ]
            if holders:
                return (
                    "It is in "
                    + " and ".join(
                        f"project {entity}/{project}: add {_scope_flags(here, entity, project)}"
                        for entity, project in holders
                    )
                    + "."
                )
        listed = ", ".join(f"{entity}/{project}" for entity, project in others)
        return f"Projects with artifacts: {listed} (dagster-artifacts ls --all-projects)."

    def override(self, key: str, value: Any) -> None:
        """A global option given after the subcommand (it wins over the one before)."""
        if self._api is not None:
            raise RuntimeError("global options must be read before the store is opened")
        if key == "as_json":
            self.as_json = self.as_json or bool(value)
        else:
            self.options[key] = value


def _scope_flags(here: tuple[str, str], entity: str, project: str) -> str:
    flags = f"--project {project}"
    return flags if entity == here[0] else f"--entity {entity} {flags}"


#: Global options every subcommand also accepts after its name: (parameter, flags, help).
#: ``--root`` is not among them: ``get`` and ``verify`` use it for the local folder, as
#: ``download(root=)`` does; ``--store`` names the store anywhere.
SUBCOMMAND_GLOBALS = (
    ("root", ("--store",), "Store URL (env DAGSTER_ARTIFACTS_ROOT; --root before the command)."),
    ("database", ("--database",), "Registry URL (env DAGSTER_ARTIFACTS_DATABASE)."),
    ("entity", ("--entity",), "Entity (env DAGSTER_ARTIFACTS_ENTITY)."),
    ("project", ("--project",), "Project (env DAGSTER_ARTIFACTS_PROJECT)."),
)


def accept_global_options(command: click.Command) -> None:
    """Let ``command`` take the global options after its name too (``versions x --project p``),
    unless it has an option of the same name; groups pass them on to their commands."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_global_options(sub)
        return
    taken = {flag for param in command.params for flag in getattr(param, "opts", [])}
    for key, flags, help_text in SUBCOMMAND_GLOBALS:
        if taken.isdisjoint(flags):
            command.params.append(
                click.Option(flags, expose_value=False, callback=_overrider(key), help=help_text)
            )


def _overrider(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def override(click_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            click_ctx.ensure_object(Context).override(key, value)
        return value

    return override


pass_ctx = click.make_pass_decorator(Context)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn typed errors into a one-line message and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USAGE_ERRORS as error:
            _fail(str(error), EXIT_USAGE)
        except ArtifactNotFoundError as error:
            context = args[0] if args and isinstance(args[0], Context) else None
            hint = context.where_else(kwargs.get("name")) if context is not None else ""
            _fail(f"{error} {hint}".strip(), EXIT_FAILURE)
        except ArtifactError as error:
            _fail(str(error), EXIT_FAILURE)
        except FileNotFoundError as error:
            _fail(str(error), EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, default=False, help="Print JSON instead of a table."
    )(func)


def artifact_name_only(name: str) -> str:
    """Refuse ``NAME:ALIAS`` where a command takes a whole artifact (exit 2)."""
    if ":" in name:
        raise InvalidArgumentError(
            f"Expected an artifact name without a version, got {name!r}; drop the "
            f"':{name.rsplit(':', 1)[1]}'."
        )
    return name


class DurationType(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: Any, ctx: Any) -> timedelta:
        try:
            return parse_duration(value)
        except InvalidArgumentError as error:
            self.fail(str(error), param, ctx)


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        try:
            return parse_size(value)
        except InvalidArgumentError as error:
            self.fail(str(error), param, ctx)


DURATION = DurationType()
SIZE = SizeType()
