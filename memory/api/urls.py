"""Routes of the memory API under /api/v1/orgs/{org_slug}/memory/."""

from rest_framework.routers import SimpleRouter

from memory.api import views

ORG = r"orgs/(?P<org_slug>[-a-z0-9]+)"

router = SimpleRouter()
router.register(rf"{ORG}/memory/facts", views.FactViewSet, basename="memory-fact")
router.register(rf"{ORG}/memory/conflicts", views.ConflictViewSet, basename="memory-conflict")
router.register(rf"{ORG}/memory/entities", views.EntityViewSet, basename="memory-entity")
router.register(rf"{ORG}/memory/relationships", views.RelationshipViewSet, basename="memory-relationship")
router.register(rf"{ORG}/memory/expiry-reviews", views.ExpiryReviewViewSet, basename="memory-expiryreview")
router.register(rf"{ORG}/memory", views.MemoryViewSet, basename="memory")

urlpatterns = router.urls
