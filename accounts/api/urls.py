from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api import approvals, views

ORG = r"orgs/(?P<org_slug>[-a-z0-9]+)"

router = SimpleRouter()
router.register(rf"{ORG}/members", views.MembershipViewSet, basename="member")
router.register(rf"{ORG}/invitations", views.InvitationViewSet, basename="invitation")
router.register(rf"{ORG}/api-keys", views.ApiKeyViewSet, basename="apikey")
router.register(rf"{ORG}/audit-events", views.AuditEventViewSet, basename="auditevent")
router.register(rf"{ORG}/approvals", approvals.ApprovalViewSet, basename="approval")

urlpatterns = [
    path("orgs/", views.OrganizationListViewSet.as_view({"get": "list", "post": "create"}), name="organization-list"),
    path(
        "orgs/<slug:org_slug>/",
        views.OrganizationDetailViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="organization-detail",
    ),
    *router.urls,
]
