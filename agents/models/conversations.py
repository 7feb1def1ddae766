"""Conversations: a person's threads with the assistant and the messages in them."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned


class MessageRole(models.TextChoices):
    """Who speaks: the person, the assistant, one of the AI roles at work, a tool, or the system."""

    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"
    MANAGER = "manager", "Manager"
    EMPLOYEE = "employee", "Employee"
    SUPERVISOR = "supervisor", "Supervisor"
    TOOL = "tool", "Tool"
    SYSTEM = "system", "System"


class Thread(OrganizationOwned):
    """One conversation of one member of the organization with the assistant.

    ``pending`` holds what the assistant waits for from the person, if
    anything: the missing parameters of a simple action (``{"kind":
    "action", ...}``) or the answer to a question an AI role asked while
    working on a task (``{"kind": "task_question", "task": <id>, ...}``).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200, blank=True)
    pending = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    last_message_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["organization", "user", "-updated_at"], name="thread_org_user_recent")]

    def __str__(self) -> str:
        return self.title or f"thread {self.pk}"


class Message(OrganizationOwned):
    """One message of a thread. Ids grow with time, so a page asks for ``?after=<last id>``.

    ``metadata`` says where a message comes from: the intent it was parsed
    as, the task and TaskEvent sequence it mirrors, the model call, and
    ``scripted``/``label`` when the offline scripted model wrote it.
    """

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=12, choices=MessageRole.choices)
    content = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    task = models.ForeignKey("automation.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["thread_id", "id"]
        indexes = [models.Index(fields=["thread", "id"], name="message_thread_id")]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"
