"""Routes of the chat API under /api/v1/orgs/{org_slug}/ (threads, messages, plans)."""

from rest_framework.routers import SimpleRouter

from agents.api import chat

ORG = r"orgs/(?P<org_slug>[-a-z0-9]+)"

router = SimpleRouter()
router.register(rf"{ORG}/threads", chat.ThreadViewSet, basename="thread")
router.register(rf"{ORG}/plans", chat.PlanViewSet, basename="plan")

urlpatterns = router.urls
