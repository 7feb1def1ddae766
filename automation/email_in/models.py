"""Inbound mail: personal addresses, received messages (and the quarantine), attachments, thread references."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned


class InboundMemberAddress(OrganizationOwned):
    """A member's personal inbound address: ``tasks+<org-slug>.<token>@<domain>``.

    Mail to it becomes a task assigned to ``user``. The token is random, so
    the address cannot be guessed from a name; rotating it retires the old one.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="inboundaddress_one_per_member"),
            models.UniqueConstraint(fields=["organization", "token"], name="inboundaddress_unique_token"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}.{self.token}"


class InboundChannel(models.TextChoices):
    SMTP = "smtp", "Built-in SMTP receiver"
    MAILGUN = "mailgun", "Mailgun inbound webhook"
    SENDGRID = "sendgrid", "SendGrid inbound webhook"
    POSTMARK = "postmark", "Postmark inbound webhook"


class InboundStatus(models.TextChoices):
    TASK_CREATED = "task_created", "Created a task"
    APPENDED = "appended", "Added to an existing task"
    QUARANTINED = "quarantined", "Quarantined"
    RELEASED = "released", "Released from quarantine"
    DELETED = "deleted", "Deleted from quarantine"


class QuarantineReason(models.TextChoices):
    UNKNOWN_SENDER = "unknown_sender", "The sender is not a member of the organization"
    NOT_PERMITTED = "not_permitted", "The sender may not create tasks"
    AUTH_FAILED = "auth_failed", "SPF, DKIM or DMARC failed"
    SPAM = "spam", "The provider flagged it as spam"
    OVERSIZE = "oversize", "The message is too large"
    ATTACHMENT_TYPE = "attachment_type", "An attachment's type is not allowed"
    ATTACHMENT_SIZE = "attachment_size", "An attachment is too large"
    AUTO_REPLY = "auto_reply", "An automatic reply"
    BOUNCE = "bounce", "A bounce (delivery status notification)"
    MALFORMED = "malformed", "The message is malformed"


class AckStatus(models.TextChoices):
    NONE = "", "No acknowledgement"
    PENDING = "pending", "To be sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Could not be sent"


class InboundMessage(OrganizationOwned):
    """One message received for an organization, whatever became of it.

    ``message_id`` is unique per organization, so the same message delivered
    twice (a retrying server, two recipients in one organization, a provider
    redelivering a webhook) creates nothing new. A quarantined message keeps
    its raw bytes until an admin releases or deletes it.
    """

    message_id = models.CharField(max_length=500)
    channel = models.CharField(max_length=10, choices=InboundChannel.choices)
    recipient = models.CharField(max_length=254)
    personal_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Owner of the personal address the message was sent to.",
    )
    sender = models.CharField(max_length=254, blank=True, help_text="The From address.")
    sender_name = models.CharField(max_length=200, blank=True)
    envelope_sender = models.CharField(max_length=254, blank=True)
    sender_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    subject = models.CharField(max_length=500, blank=True)
    in_reply_to = models.CharField(max_length=500, blank=True)
    references = models.JSONField(default=list, blank=True)
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=InboundStatus.choices)
    reason = models.CharField(max_length=20, choices=QuarantineReason.choices, blank=True)
    reason_detail = models.TextField(blank=True)
    verdicts = models.JSONField(default=dict, blank=True, help_text="SPF/DKIM/DMARC/spam verdicts found.")
    metadata = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder,
                                help_text="Extracted due date, priority, assignee, with confidence.")
    task = models.ForeignKey("automation.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    raw = models.BinaryField(null=True, blank=True, help_text="Kept while quarantined.")
    ack_status = models.CharField(max_length=8, choices=AckStatus.choices, blank=True, default="")
    ack_message_id = models.CharField(max_length=500, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "status", "-received_at"], name="inbound_org_status"),
            models.Index(fields=["ack_status"], name="inbound_ack_pending", condition=models.Q(ack_status="pending")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["organization", "message_id"], name="inbound_message_once"),
            models.CheckConstraint(
                condition=~models.Q(status="quarantined") | ~models.Q(reason=""), name="inbound_quarantine_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} ({self.status})"


class InboundAttachment(OrganizationOwned):
    """An attachment of an inbound message, stored in the organization's files (or why not)."""

    message = models.ForeignKey(InboundMessage, on_delete=models.CASCADE, related_name="attachments")
    task = models.ForeignKey("automation.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=120)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    path = models.CharField(max_length=1024, blank=True, help_text="Where it lies in the organization's files.")
    note = models.CharField(max_length=300, blank=True, help_text="Why it was not stored, if it was not.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename


class EmailThreadRef(OrganizationOwned):
    """A Message-ID that belongs to a task's thread (received, or sent by us), for reply threading."""

    message_id = models.CharField(max_length=500)
    task = models.ForeignKey("automation.Task", on_delete=models.CASCADE, related_name="+")
    outbound = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["organization", "message_id"], name="emailthread_unique_id")]

    def __str__(self) -> str:
        return f"{self.message_id} → #{self.task_id}"
