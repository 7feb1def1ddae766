from agents.models.conversations import Message, MessageRole, Thread
from agents.models.llm import (
    AgentRole,
    BudgetWindow,
    CallOutcome,
    LLMBudgetExtension,
    LLMBudgetWarning,
    LLMCall,
    Locality,
    OrganizationLLMSettings,
)
from agents.models.work import AgentWork, Plan, PlanStatus, Strategy, Waiting, WorkKind

__all__ = [
    "AgentRole",
    "AgentWork",
    "BudgetWindow",
    "CallOutcome",
    "LLMBudgetExtension",
    "LLMBudgetWarning",
    "LLMCall",
    "Locality",
    "Message",
    "MessageRole",
    "OrganizationLLMSettings",
    "Plan",
    "PlanStatus",
    "Strategy",
    "Thread",
    "Waiting",
    "WorkKind",
]
