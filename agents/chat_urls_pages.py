"""Chat pages under /orgs/<slug>/chat/ (included from config/urls.py; the socket route is in config/routing.py)."""

from django.urls import path, re_path

from agents import chat_views

ORG = "orgs/<slug:org_slug>/chat"
THREAD = f"{ORG}/threads/<int:thread_id>"

urlpatterns = [
    path(f"{ORG}/", chat_views.chat_home, name="chat"),
    path(f"{THREAD}/", chat_views.chat_thread, name="chat-thread"),
    path(f"{THREAD}/messages/", chat_views.chat_post, name="chat-post"),
    re_path(r"^orgs/(?P<org_slug>[-a-zA-Z0-9_]+)/chat/threads/(?P<thread_id>[0-9]+)/approvals/(?P<approval_id>[0-9]+)/"
            r"(?P<decision>approve|reject)/$", chat_views.chat_decide, name="chat-decide"),
    path(f"{THREAD}/plans/<int:plan_id>/edit/", chat_views.chat_plan_edit, name="chat-plan-edit"),
    path(f"{THREAD}/tasks/<int:task_id>/status/", chat_views.chat_run_status, name="chat-run-status"),
    path(f"{THREAD}/tasks/<int:task_id>/compare/", chat_views.chat_compare, name="chat-compare"),
    path(f"{THREAD}/tasks/<int:task_id>/<str:action>/", chat_views.chat_task_action, name="chat-task-action"),
]
