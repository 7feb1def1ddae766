"""Routes of email in and notifications under /api/v1/: org-scoped APIs and the providers' inbound webhooks."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from automation.email_in import api, webhooks
from automation.notifications.api import NotificationPreferenceViewSet

ORG = r"orgs/(?P<org_slug>[-a-z0-9]+)"

router = SimpleRouter()
router.register(rf"{ORG}/inbound/quarantine", api.QuarantineViewSet, basename="inbound-quarantine")
router.register(rf"{ORG}/inbound", api.InboundAddressViewSet, basename="inbound-address")

urlpatterns = [
    *router.urls,
    re_path(
        rf"^{ORG}/notification-preferences/$",
        NotificationPreferenceViewSet.as_view({"get": "list", "put": "update_all", "patch": "update_all"}),
        name="notification-preferences",
    ),
    re_path(r"^hooks/email/mailgun/inbound(_mime)?/$", webhooks.mailgun_inbound, name="email-inbound-mailgun"),
    path("hooks/email/sendgrid/inbound/", webhooks.sendgrid_inbound, name="email-inbound-sendgrid"),
    path("hooks/email/postmark/inbound/", webhooks.postmark_inbound, name="email-inbound-postmark"),
]
