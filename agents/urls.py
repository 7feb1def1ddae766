"""Portal pages of the agents app: the organization's dashboard and its LLM usage."""

from django.urls import path, re_path

from agents import views_dashboard, views_usage

urlpatterns = [
    # /orgs/new/ and /orgs/switch/ are account pages, not organizations: leave them to accounts.urls.
    re_path(r"^orgs/(?!(?:new|switch)/$)(?P<org_slug>[-a-zA-Z0-9_]+)/$", views_dashboard.dashboard, name="dashboard"),
    path("orgs/<slug:org_slug>/usage/", views_usage.llm_usage, name="llm-usage-page"),
]
