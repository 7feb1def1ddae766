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

__all__ = [
    "AgentRole",
    "BudgetWindow",
    "CallOutcome",
    "LLMBudgetExtension",
    "LLMBudgetWarning",
    "LLMCall",
    "Locality",
    "OrganizationLLMSettings",
]
