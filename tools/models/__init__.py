from tools.models.calls import ToolCall
from tools.models.credentials import IntegrationCredential
from tools.models.payments import BudgetAlert, PaymentBudget, PaymentTransaction
from tools.models.settings import InternalDomain, ToolSetting

__all__ = [
    "BudgetAlert",
    "IntegrationCredential",
    "InternalDomain",
    "PaymentBudget",
    "PaymentTransaction",
    "ToolCall",
    "ToolSetting",
]
