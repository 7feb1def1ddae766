"""Threads and messages: start a conversation, post to it (the handling runs in the background).

Posting a user message stores it and, once the transaction commits, queues
two Celery tasks: ``agents.handle_message`` (intent, then the handler's
answer) and ``agents.learn_from_message`` (facts for business memory).
"""

from __future__ import annotations

import logging

from django.db import transaction

from accounts.errors import InvalidInput, NotFound
from accounts.models import Membership, Organization, User
from agents import conf
from agents.models import Message, MessageRole, Thread
from agents.services.activity import message_add

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 8000
MAX_TITLE_CHARS = 200


def _check_member(organization: Organization, user: User) -> None:
    if not user.pk or not Membership.objects.for_org(organization).filter(user=user).exists():
        raise NotFound("Not found.")


def thread_create(*, organization: Organization, user: User, title: str = "") -> Thread:
    """A new conversation of ``user`` in ``organization``."""
    _check_member(organization, user)
    title = " ".join((title or "").split())
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidInput(f"a title has at most {MAX_TITLE_CHARS} characters", field="title")
    return Thread.objects.for_org(organization).create(organization=organization, user=user, title=title)


def thread_get(*, organization: Organization, user: User, thread_id: int) -> Thread:
    """The user's own thread (another person's, or another organization's, is "not found")."""
    thread = Thread.objects.for_org(organization).filter(pk=thread_id, user=user).first()
    if thread is None:
        raise NotFound("Not found.")
    return thread


def _enqueue_handling(organization_id: int, message_id: int) -> None:
    from agents.tasks import handle_message, learn_from_message

    try:
        handle_message.delay(organization_id=organization_id, message_id=message_id)
        if conf.extract_facts():
            learn_from_message.delay(organization_id=organization_id, message_id=message_id)
    except Exception:  # the broker is down: the message is stored; the sweep answers it later
        logger.warning("could not queue the handling of message %s", message_id, exc_info=True)


def message_post(*, thread: Thread, user: User, content: str, handle: bool = True) -> Message:
    """Store the user's message and queue its handling after commit (``handle=False``: store only)."""
    if thread.user_id != user.pk:
        raise NotFound("Not found.")
    text = (content or "").strip()
    if not text:
        raise InvalidInput("write a message", field="content")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"a message has at most {MAX_MESSAGE_CHARS} characters", field="content")
    if "\x00" in text:
        raise InvalidInput("a message may not contain NUL characters", field="content")
    with transaction.atomic():
        message = message_add(thread=thread, role=MessageRole.USER, content=text, author=user,
                              metadata={"status": "received"})
        if not thread.title:
            title = " ".join(text.split())[:80]
            Thread.objects.for_org(thread.organization).filter(pk=thread.pk, title="").update(title=title)
            thread.title = title
        if handle:
            organization_id, message_id = thread.organization_id, message.pk
            transaction.on_commit(lambda: _enqueue_handling(organization_id, message_id))
    return message

