"""Portal pages of the automation app under /orgs/<slug>/ (the API is in automation/api/urls.py)."""

from django.urls import path, re_path

from automation.views import approvals, schedules, tasks, workflows

ORG = "orgs/<slug:org_slug>"

urlpatterns = [
    path(f"{ORG}/tasks/", tasks.task_list, name="task-list"),
    path(f"{ORG}/tasks/new/", tasks.task_new, name="task-new"),
    path(f"{ORG}/tasks/<int:pk>/", tasks.task_detail, name="task-detail"),
    path(f"{ORG}/tasks/<int:pk>/graph/", workflows.task_graph, name="task-graph"),
    path(f"{ORG}/tasks/<int:pk>/runs/<int:attempt>/", tasks.task_run, name="task-run"),
    re_path(
        rf"^orgs/(?P<org_slug>[-a-zA-Z0-9_]+)/tasks/(?P<pk>[0-9]+)/(?P<action>{tasks.ACTION_PATTERN})/$",
        tasks.task_action,
        name="task-action",
    ),
    path(f"{ORG}/workflow-runs/", workflows.workflow_runs, name="workflow-runs"),
    path(f"{ORG}/schedules/", schedules.schedule_list, name="schedule-list"),
    path(f"{ORG}/schedules/new/<str:kind>/", schedules.schedule_new, name="schedule-new"),
    path(f"{ORG}/schedules/<int:pk>/", schedules.schedule_detail, name="schedule-detail"),
    path(f"{ORG}/schedules/<int:pk>/enabled/", schedules.schedule_toggle, name="schedule-toggle"),
    path(f"{ORG}/schedules/<int:pk>/run-now/", schedules.schedule_run_now, name="schedule-run-now"),
    path(f"{ORG}/schedules/<int:pk>/delete/", schedules.schedule_delete, name="schedule-delete"),
    path(f"{ORG}/approvals/", approvals.approval_inbox, name="approvals"),
    path(f"{ORG}/approvals/<int:pk>/approve/", approvals.approval_approve, name="approval-approve"),
    path(f"{ORG}/approvals/<int:pk>/reject/", approvals.approval_reject, name="approval-reject"),
]
