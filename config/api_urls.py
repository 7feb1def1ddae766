"""Every app's API under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("memory.api.urls")),
    path("", include("automation.api.urls")),
    path("", include("automation.email_in.urls")),
    path("", include("tools.api.urls")),
    path("", include("agents.api.llm_urls")),
    path("", include("agents.api.chat_urls")),
]
