"""WebSocket routes of every app, gathered in one place."""

from django.urls import path

from accounts.consumers import OrganizationEventsConsumer

websocket_urlpatterns = [
    path("ws/orgs/<slug:org_slug>/events/", OrganizationEventsConsumer.as_asgi()),
]
