"""The application `authsvc serve` runs: authsvc's own, or yours (`--app` / AUTHSVC_APP).

`MODULE:ATTR` names, as uvicorn does, a module importable from the working directory (or
the installed packages) and an attribute in it: an app made by `authsvc.app.create_app`,
or a function taking no arguments that returns one. Everything is checked here, in the
serving process, before any port is bound: a module or attribute that is not there, a
function that fails or returns something else, is one line naming it (`AppError`).

A function is called here once to check it, and the app it built closed again; uvicorn
then calls it in each worker (`factory=True`), so each worker has its own app. An app
object is imported again by each worker process (with `--workers` above 1).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
from dataclasses import dataclass
from typing import Any

from authsvc.app import AuthService
from authsvc.settings import ConfigError, Settings

DEFAULT_APP = "authsvc.app:create_app"
WHAT_IT_MUST_BE = (
    "an app made by authsvc.app.create_app, or a function taking no arguments that returns one"
)


class AppError(Exception):
    """The named app cannot be served; the message names what was not found."""


@dataclass(frozen=True, slots=True)
class ServedApp:
    """What uvicorn is given: the import string, whether to call it, and the settings the
    app was built with (its database is the one `serve` migrates)."""

    target: str
    factory: bool
    settings: Settings


def load_app(spec: str) -> ServedApp:
    """Import and check `spec` (`MODULE:ATTR`)."""
    app, factory = _resolve(spec)
    settings = app.services.settings
    if factory:
        asyncio.run(app.services.aclose())
    return ServedApp(spec, factory=factory, settings=settings)


def build_app(spec: str) -> AuthService:
    """The app `spec` names, built: for the command line, which works with its services
    (its user store, password hasher and events). The caller closes its services."""
    return _resolve(spec)[0]


def _resolve(spec: str) -> tuple[AuthService, bool]:
    """The app, and whether it came from a function (else it is the module's object)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AppError(f"app {spec!r} must be MODULE:ATTR, e.g. shop_auth:app")
    # As `uvicorn module:app` does: modules in the working directory are importable.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = _import(module_name)
    try:
        found = _lookup(module, attribute)
    except AttributeError:
        raise AppError(
            f"app {spec!r}: module {module_name!r} has no attribute {attribute!r}"
        ) from None
    if isinstance(found, AuthService):
        return found, False
    if not callable(found) or not _takes_no_arguments(found):
        raise AppError(f"app {spec!r} is a {type(found).__name__}, not {WHAT_IT_MUST_BE}")
    return _call(spec, found), True


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ConfigError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise AppError(f"app module {name!r} not found") from None
        if exc.name is not None and name.startswith(exc.name + "."):
            raise AppError(f"app module {name!r} not found (no package {exc.name!r})") from None
        raise AppError(f"importing app module {name!r} failed: {_one_line(exc)}") from None
    except Exception as exc:  # the application's own code: report it in one line
        raise AppError(f"importing app module {name!r} failed: {_one_line(exc)}") from None


def _lookup(module: Any, attribute: str) -> Any:
    found = module
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def _takes_no_arguments(function: Any) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters
    )


def _call(spec: str, function: Any) -> AuthService:
    try:
        built = function()
    except ConfigError:
        raise
    except Exception as exc:
        raise AppError(f"app {spec!r} failed: {_one_line(exc)}") from None
    if inspect.isawaitable(built):
        _discard(built)
        raise AppError(f"app {spec!r} is an async function; it must return the app itself")
    if not isinstance(built, AuthService):
        raise AppError(f"app {spec!r} returned a {type(built).__name__}, not an authsvc app")
    return built


def _discard(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()  # no "coroutine was never awaited" warning


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
