"""Wiring: system jobs declared, the admin site's quarantine actions, the spool's recovery of dead claims."""

from __future__ import annotations

import os
import time

import pytest

from accounts.models import User
from automation.email_in.processing import envelope
from automation.models import InboundMessage, Task
from automation.system_jobs import system_jobs
from tests.email_in.tenancy_factories import _quarantined


def test_system_jobs_are_declared():
    """The spool, notification and digest jobs are among the system's periodic jobs."""
    names = {job.task for job in system_jobs()}
    assert {"automation.email_spool", "automation.notifications_tick", "automation.notifications_periodic"} <= names


def test_runstack_starts_the_receiver(settings):
    """The run command's extra processes include the SMTP receiver on the configured port."""
    assert settings.RUNSTACK_EXTRA_PROCESSES["smtp"] == [
        "smtp_receiver", "--host", settings.INBOUND_SMTP_HOST, "--port", str(settings.INBOUND_SMTP_PORT)]


@pytest.mark.django_db
def test_admin_site_releases_quarantined_mail(tenant_a, client):
    """Staff see quarantined mail in the admin site and release it with the action (it becomes a task)."""
    held = _quarantined(tenant_a)
    staff = User.objects.create_superuser(email="staff@staffer.test", password="pw-12345-long")
    client.force_login(staff)
    listing = client.get("/admin/automation/inboundmessage/?status__exact=quarantined")
    assert listing.status_code == 200
    assert b"stranger@elsewhere.test" in listing.content
    response = client.post("/admin/automation/inboundmessage/",
                           {"action": "release", "_selected_action": [held.pk]}, follow=True)
    assert response.status_code == 200
    assert InboundMessage.objects.for_org(tenant_a.organization).get(pk=held.pk).status == "released"
    assert Task.objects.for_org(tenant_a.organization).count() == 1


def test_dead_claims_go_back_to_the_spool(spool):
    """A message claimed by a process that died is put back for processing after the stale delay."""
    name = spool.write(b"From: a@b.test\r\n\r\nx", envelope(channel="smtp", mail_from="a@b.test", recipients=[]))
    assert spool.claim(name) is not None
    assert spool.recover_stale() == 0
    old = time.time() - 3600
    os.utime(spool.work / name, (old, old))
    assert spool.recover_stale() == 1
    assert spool.pending() == [name]
