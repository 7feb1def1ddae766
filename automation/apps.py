import importlib

from django.apps import AppConfig

# Executors other modules of this app contribute, loaded if present.
OPTIONAL_EXECUTOR_MODULES = ("automation.executors.approval",)
# Celery tasks and system jobs of schedules, reminders and approval expiry (registered on import).
SCHEDULE_MODULES = ("automation.tasks_schedules",)


class AutomationConfig(AppConfig):
    name = "automation"

    def ready(self) -> None:
        from automation.executors import builtin, tool

        builtin.register_builtins()
        tool.register_if_available()
        for module in OPTIONAL_EXECUTOR_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
        for module in SCHEDULE_MODULES:
            importlib.import_module(module)
        from automation.email_in import wiring  # email in and notifications: signals, listener, jobs, admin

        wiring.ready()
