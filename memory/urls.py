"""The Business Memory page under /orgs/<slug>/memory/."""

from django.urls import path

from memory import views

urlpatterns = [
    path("orgs/<slug:org_slug>/memory/", views.memory_page, name="memory-page"),
    path("orgs/<slug:org_slug>/memory/facts/<int:pk>/edit/", views.memory_fact_edit, name="memory-fact-edit"),
    path("orgs/<slug:org_slug>/memory/facts/<int:pk>/delete/", views.memory_fact_delete, name="memory-fact-delete"),
    path("orgs/<slug:org_slug>/memory/conflicts/<int:pk>/resolve/", views.memory_conflict_resolve,
         name="memory-conflict-resolve"),
    path("orgs/<slug:org_slug>/memory/forget/", views.memory_forget, name="memory-forget"),
    path("orgs/<slug:org_slug>/memory/clear/", views.memory_clear, name="memory-clear"),
]
