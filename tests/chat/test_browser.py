"""The chat in a real browser, against a real daphne and a real Celery worker running the AI workforce.

An admin of Acme asks for the onboarding in the chat; the scripted model plans it. The page shows the plan as
it arrives, the admin approves it with the card's button, watches the Employee write the letter, the Supervisor
send it back once (iteration 2/3), approves the letter with its button, and sees the request complete. Midway
the page is reloaded (the history comes back whole), the server is stopped and started again (the page catches
up from the database), and a second tab stays the same as the first. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.chat.live import Daphne

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
REQUEST = "Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana"
SLOW = 120_000
FIRST = 420_000  # a cold worker loads the embedding model (memory context) before the Manager's first plan

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium"),
]


@pytest.fixture(scope="module")
def chat_worker(request, django_db_setup, tmp_path_factory):
    """A real worker with its own media folder and quick retries (a session worker is paused meanwhile)."""
    from config import heartbeat
    from tests.support.worker import Worker, purge_broker

    media = tmp_path_factory.mktemp("chat-media")
    session_worker = request.getfixturevalue("celery_worker") if heartbeat.live_workers() else None
    if session_worker is not None:
        session_worker.stop()
    worker = Worker("chat", concurrency=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDIA_ROOT", str(media))
        patch.setenv("AUTOMATION_RETRY_BASE_SECONDS", "0.2")
        patch.setenv("AUTOMATION_RETRY_CAP_SECONDS", "1")
        purge_broker()
        worker.start()
        try:
            yield SimpleNamespace(worker=worker, media=media)
        finally:
            worker.stop()
    purge_broker()
    if session_worker is not None:
        session_worker.start()


@pytest.fixture
def server(chat_worker, transactional_db, settings, clean_layer):
    """daphne, forked from this process. Ask for it after ``browser``: a daphne restarted mid-test inherits the
    browser driver's pipes, so it must stop before the browser does or the driver never sees them close."""
    settings.MEDIA_ROOT = chat_worker.media
    daphne = Daphne().start()
    yield daphne
    daphne.stop()


@pytest.fixture
def browser(tmp_path):
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS, env=env)
        yield browser
        browser.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"chat-{name}.png"), full_page=True)


def _log_in(page, base: str, email: str) -> None:
    from playwright.sync_api import expect

    from tests.factories import PASSWORD

    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def _timeline(page) -> list[int]:
    return page.locator("#chat-timeline > li").evaluate_all("items => items.map(li => Number(li.dataset.id))")


def _panel(page, root: int) -> str:
    return " ".join(page.locator(f"#run-{root}").inner_text().split())


def _database_messages(thread_id: int, organization) -> list[int]:
    from agents.models import Message

    return list(Message.objects.for_org(organization).filter(thread_id=thread_id).order_by("id")
                .values_list("id", flat=True))


def test_onboarding_in_the_chat_live_with_approvals_reload_and_reconnect(clean_layer, chat_worker, browser, server):
    """Ask, watch the plan and the steps arrive, approve plan and letter with their buttons, see it complete;
    a reload, a server restart and a second tab all end with the same, complete history."""
    from playwright.sync_api import expect

    from agents.models import Thread
    from automation.models import Task
    from tests.agents.loop_support import demo_domains
    from tests.conftest import make_tenant
    from tests.e2e.support import name_people

    tenant = make_tenant("acme", "Acme Corp")
    name_people(tenant)
    demo_domains(tenant.organization)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    _log_in(page, server.url, tenant.admin.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ask your AI staff")
    page.get_by_label("Message").fill(REQUEST)
    _shot(page, "1-ask")
    page.get_by_role("button", name="Start conversation").click()
    expect(page).to_have_url(re.compile(r"/chat/threads/\d+/$"))
    thread = Thread.objects.for_org(tenant.organization).get(user=tenant.admin)
    expect(page.locator("#chat-live")).to_have_text("Live")

    # The assistant answers and the Manager's plan arrives without a reload, with the card to approve it.
    expect(page.locator("#chat-timeline .role-assistant").first).to_contain_text("The Manager is planning it",
                                                                                timeout=FIRST)
    expect(page.locator("#chat-thinking")).to_have_text("Manager is planning…", timeout=FIRST)
    _shot(page, "2-planning")
    expect(page.locator("#chat-timeline .role-manager").first).to_contain_text("Plan v1", timeout=FIRST)
    root = Task.objects.for_org(tenant.organization).get(parent__isnull=True, source="chat")
    card = page.locator(".approval-card").first
    expect(card).to_contain_text("Approve the plan")
    expect(page.locator(f"#run-{root.pk} .checklist li")).to_have_count(3)
    expect(page.locator(f"#run-{root.pk} .progress-text")).to_have_text("0 of 3 steps done · about 10 min left")
    expect(page.locator(f"#run-{root.pk} .status")).to_have_text("Waiting", timeout=SLOW)  # parked for approval
    _shot(page, "3-plan-waiting")

    second = context.new_page()  # another tab of the same session, on a phone
    second.set_viewport_size({"width": 390, "height": 844})
    second.set_default_timeout(30_000)
    second.goto(page.url)
    expect(second.locator("#chat-live")).to_have_text("Live")

    card.get_by_role("button", name="Approve").click()
    expect(card).to_contain_text(f"approved by {tenant.admin.email}")
    expect(second.locator(".approval-card").first).to_contain_text("approved by")  # the other tab follows

    # The Employee works, the Supervisor sends the letter back once: the iteration counter says so.
    expect(page.locator(f"#run-{root.pk} .iteration")).to_contain_text("Iteration 2/3", timeout=SLOW)
    _shot(page, "4-revising")
    expect(page.locator("#chat-timeline .role-supervisor").first).to_contain_text("Revise")
    expect(page.locator("#chat-timeline .role-tool").first).to_contain_text("documents_generate")

    # Reload mid-run: the page renders the same history, nothing missing, the panel the same.
    before = _timeline(page)
    page.reload()
    expect(page.locator("#chat-live")).to_have_text("Live")
    after = _timeline(page)
    assert after[: len(before)] == before
    assert after == sorted(after)

    # The server goes away while the work goes on; the page catches up from the database when it is back.
    letter_card = page.locator(".approval-card").filter(has_text="Approve: Write Maria Lopez's offer letter")
    server.stop()
    expect(page.locator("#chat-live")).to_contain_text("reconnecting")
    server.start()
    expect(page.locator("#chat-live")).to_have_text("Live", timeout=SLOW)
    expect(letter_card).to_be_visible(timeout=SLOW)
    expect(letter_card.locator(".doc-preview")).to_contain_text("Maria Lopez")
    expect(letter_card.locator(".file-link")).to_contain_text(".docx")
    letter_step = page.locator(f"#run-{root.pk} .checklist li").first
    expect(letter_step.locator(".step-status")).to_have_text("Waiting", timeout=SLOW)
    _shot(page, "5-letter-approval")
    assert _timeline(page) == _database_messages(thread.pk, tenant.organization)

    letter_card.get_by_role("button", name="Approve").click()
    expect(letter_card).to_contain_text("approved by")

    # Completion: every step done, the Manager's summary, the final cost.
    expect(page.locator(f"#run-{root.pk} .status")).to_have_text("Done", timeout=SLOW)
    expect(page.locator(f"#run-{root.pk} .progress-text")).to_have_text("3 of 3 steps done")
    expect(page.locator("#chat-timeline .role-manager").last).to_contain_text("Maria Lopez is onboarded")
    expect(page.locator("#chat-thinking")).to_be_hidden()
    _shot(page, "6-done")

    # Every message is on the page once, in order; the second tab shows the same messages and panel.
    expect(page.locator("#chat-timeline > li")).to_have_count(len(_database_messages(thread.pk, tenant.organization)))
    ids = _timeline(page)
    assert ids == _database_messages(thread.pk, tenant.organization)
    expect(second.locator("#chat-timeline > li")).to_have_count(len(ids))
    assert _timeline(second) == ids
    live_panel = _panel(page, root.pk)
    expect(second.locator(f"#run-{root.pk} .status")).to_have_text("Done")
    assert _panel(second, root.pk) == live_panel
    _shot(second, "7-second-tab-phone")
    assert second.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    # After a reload the server renders the same panel the script built from the live events.
    page.reload()
    assert _panel(page, root.pk) == live_panel
    assert _timeline(page) == ids

    # The revisions of the letter side by side.
    page.locator(".msg-links a").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Revisions of")
    expect(page.locator("table.diff ins").first).to_be_visible()
    _shot(page, "8-revisions")
