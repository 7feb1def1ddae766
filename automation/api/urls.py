"""Routes of the automation API under /api/v1/orgs/{org_slug}/ (each module registers its viewsets here)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from automation.api import analytics, onboarding, schedules, triggers, views, workflows

ORG = r"orgs/(?P<org_slug>[-a-z0-9]+)"

router = SimpleRouter()
router.register(rf"{ORG}/tasks", views.TaskViewSet, basename="task")
router.register(rf"{ORG}/schedules", schedules.ScheduleViewSet, basename="schedule")
router.register(rf"{ORG}/reminders", schedules.ReminderViewSet, basename="reminder")
router.register(rf"{ORG}/notifications", schedules.NotificationViewSet, basename="notification")
router.register(rf"{ORG}/triggers", triggers.TriggerViewSet, basename="trigger")
router.register(rf"{ORG}/workflows", workflows.WorkflowViewSet, basename="workflow")
router.register(rf"{ORG}/workflow-runs", workflows.WorkflowRunViewSet, basename="workflowrun")
router.register(rf"{ORG}/analytics", analytics.AnalyticsViewSet, basename="analytics")
router.register(rf"{ORG}/onboarding", onboarding.OnboardingViewSet, basename="onboarding")

urlpatterns = [
    *router.urls,
    path("hooks/triggers/<uuid:public_id>/", triggers.WebhookView.as_view(), name="trigger-webhook"),
]
