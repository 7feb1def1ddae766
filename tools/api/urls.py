"""Routes of the tools API under /api/v1/orgs/{org_slug}/."""

from rest_framework.routers import SimpleRouter

from tools.api import views

ORG = r"orgs/(?P<org_slug>[-a-z0-9]+)"

router = SimpleRouter()
router.register(rf"{ORG}/tools", views.ToolViewSet, basename="tool")
router.register(rf"{ORG}/tool-calls", views.ToolCallViewSet, basename="toolcall")
router.register(rf"{ORG}/tool-settings", views.ToolSettingViewSet, basename="toolsetting")
router.register(rf"{ORG}/credentials", views.CredentialViewSet, basename="credential")
router.register(rf"{ORG}/internal-domains", views.InternalDomainViewSet, basename="internaldomain")
router.register(rf"{ORG}/payment-budgets", views.PaymentBudgetViewSet, basename="paymentbudget")
router.register(rf"{ORG}/payment-transactions", views.PaymentTransactionViewSet, basename="paymenttransaction")
router.register(rf"{ORG}/files", views.FileDownloadViewSet, basename="orgfile")

urlpatterns = router.urls
