"""The executor registry: name → executor. Apps register theirs in ``AppConfig.ready()``."""

from __future__ import annotations

import re
import threading

from accounts.errors import InvalidInput
from automation.executors.base import Executor

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_registry: dict[str, Executor] = {}
_lock = threading.Lock()


def register_executor(name: str, executor: Executor, *, replace: bool = False) -> None:
    """Register ``executor`` under ``name`` (lowercase, e.g. ``"ai"``, ``"approval"``).

    Registering a taken name raises ValueError unless ``replace=True``.
    """
    if not _NAME.match(name):
        raise ValueError(f"executor name {name!r} must be lowercase letters, digits, '_', '.' or '-'")
    if not isinstance(executor, Executor):
        raise TypeError(f"{executor!r} lacks validate/breaker_key/execute")
    with _lock:
        if name in _registry and not replace and _registry[name] is not executor:
            raise ValueError(f"an executor named {name!r} is already registered")
        _registry[name] = executor


def unregister_executor(name: str) -> None:
    """Remove an executor (tests use this to clean up)."""
    with _lock:
        _registry.pop(name, None)


def get_executor(name: str) -> Executor:
    """The executor registered as ``name``; InvalidInput (field ``executor``) naming the known ones if none is."""
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise InvalidInput(
            f"unknown executor {name!r}; registered executors: {known}", field="executor", code="unknown_executor"
        ) from None


def executor_names() -> list[str]:
    """Names of every registered executor, sorted."""
    return sorted(_registry)


def is_registered(name: str) -> bool:
    return name in _registry
