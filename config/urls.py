from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("config.api_urls")),
    # The dashboard (agents.urls) answers /orgs/<slug>/ before the account pages' plain overview.
    path("", include("agents.urls")),
    path("", include("agents.chat_urls_pages")),
    path("", include("automation.urls")),
    path("", include("accounts.urls")),
    path("", include("memory.urls")),
]
