"""Pluggable executors. ``register_executor(name, executor)`` adds one; built-ins load in ``AppConfig.ready()``."""

from automation.executors.base import BaseExecutor, Effect, ExecutionContext, ExecutionResult, Executor
from automation.executors.registry import (
    executor_names,
    get_executor,
    is_registered,
    register_executor,
    unregister_executor,
)

__all__ = [
    "BaseExecutor",
    "Effect",
    "ExecutionContext",
    "ExecutionResult",
    "Executor",
    "executor_names",
    "get_executor",
    "is_registered",
    "register_executor",
    "unregister_executor",
]
