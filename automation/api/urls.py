"""Routes of the automation API under /api/v1/orgs/{org_slug}/ (each module registers its viewsets here)."""

from rest_framework.routers import SimpleRouter

from automation.api import views

ORG = r"orgs/(?P<org_slug>[-a-z0-9]+)"

router = SimpleRouter()
router.register(rf"{ORG}/tasks", views.TaskViewSet, basename="task")

urlpatterns = [*router.urls]
