from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self) -> None:
        from accounts.approvals import register_approval_handler
        from agents.llm.budgets import APPROVAL_KIND, on_budget_approval_decided

        register_approval_handler(APPROVAL_KIND, on_budget_approval_decided)
