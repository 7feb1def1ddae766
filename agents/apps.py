from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self) -> None:
        from accounts.approvals import register_approval_handler
        from agents.llm.budgets import APPROVAL_KIND, on_budget_approval_decided

        register_approval_handler(APPROVAL_KIND, on_budget_approval_decided)

        # The AI workforce: the automation engine's "ai" executor, its wake-ups, its Celery tasks and system job.
        from agents import tasks  # noqa: F401 - registers the Celery tasks and the system job
        from agents.loop import wiring
        from agents.loop.executor import EXECUTOR
        from automation.executors import register_executor

        register_executor("ai", EXECUTOR, replace=True)
        wiring.register()

        # The chat's live stream: thread messages and the events of the tasks a thread started, to its sockets.
        from agents import chat_stream

        chat_stream.register()
