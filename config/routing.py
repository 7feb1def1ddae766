"""WebSocket routes of every app, gathered in one place."""

from django.urls import path

from accounts.consumers import OrganizationEventsConsumer
from agents.consumers_chat import ThreadConsumer
from automation.notifications.consumers import NotificationsConsumer

websocket_urlpatterns = [
    path("ws/orgs/<slug:org_slug>/events/", OrganizationEventsConsumer.as_asgi()),
    path("ws/orgs/<slug:org_slug>/notifications/", NotificationsConsumer.as_asgi()),
    path("ws/orgs/<slug:org_slug>/chat/threads/<int:thread_id>/", ThreadConsumer.as_asgi()),
]
