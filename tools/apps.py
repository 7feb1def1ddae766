from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "tools"
    verbose_name = "Tools"

    def ready(self) -> None:
        from accounts.approvals import register_approval_handler
        from tools import builtin, checks  # noqa: F401 - registers the system checks
        from tools.approvals import on_tool_call_decided

        builtin.register_all()
        register_approval_handler("tool_call", on_tool_call_decided)
