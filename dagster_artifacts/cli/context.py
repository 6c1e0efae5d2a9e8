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
