"""Routes of the LLM usage API under /api/v1/orgs/{org_slug}/llm/."""

from rest_framework.routers import SimpleRouter

from agents.api import llm

ORG = r"orgs/(?P<org_slug>[-a-z0-9]+)"

router = SimpleRouter()
router.register(rf"{ORG}/llm/usage", llm.LLMUsageViewSet, basename="llm-usage")
router.register(rf"{ORG}/llm/calls", llm.LLMCallViewSet, basename="llm-call")

urlpatterns = router.urls
