"""The portal in a real browser: log in, create a task, find it in the list, approve from the inbox; every page
fits a phone screen. Screenshots go to test-artifacts/ (ignored by git)."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.portal.browser_support import CHROMIUM, log_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium"),
]


def test_manager_creates_a_task_finds_it_and_approves_from_the_inbox(transactional_db, live_server, browser):
    """A manager logs in, creates a task with the form, finds it by search, and approves a request in the inbox."""
    from playwright.sync_api import expect

    from accounts.models import ApprovalRequest
    from tests.conftest import make_tenant
    from tests.portal.factories import make_approval

    tenant = make_tenant("acme", "Acme Corp")
    approval = make_approval(tenant.organization, title="Laptop for Maria", requested_by=tenant.member,
                             cost_estimate="1800.00", currency="EUR", reason="New QA engineer starts on 1 March.")
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    log_in(page, base, tenant.manager.email)
    expect(page).to_have_url(f"{base}/orgs/acme/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Corp")
    expect(page.get_by_role("link", name=re.compile("1 approval waiting for you"))).to_be_visible()
    shot(page, "1-dashboard")

    main_nav = page.get_by_role("navigation", name="Main")
    main_nav.get_by_role("link", name="Tasks").click()
    expect(page).to_have_url(f"{base}/orgs/acme/tasks/")
    page.get_by_role("link", name="New task").click()
    page.get_by_label("Title").fill("Order a laptop for Maria Lopez")
    page.get_by_label("Description").fill("QA engineer, starts 1 March.")
    page.get_by_label("Priority").select_option(label="High (75)")
    page.get_by_label("Assignee").select_option(label=tenant.member.email)
    shot(page, "2-new-task")
    page.get_by_role("button", name="Create task").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Order a laptop for Maria Lopez")
    expect(page.get_by_role("status").first).to_contain_text("Created task")
    expect(page.locator("#timeline .event-created")).to_have_count(1)
    shot(page, "3-task-detail")

    page.get_by_role("button", name="Start").click()
    expect(page.locator("#task-status")).to_have_text("In progress")
    expect(page.locator("#timeline .event-status_changed")).to_have_count(1)

    main_nav.get_by_role("link", name="Tasks").click()
    page.get_by_label("Search").fill("laptop Maria")
    page.get_by_role("button", name="Apply").click()
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Order a laptop for Maria Lopez")
    expect(rows.first).to_contain_text("In progress")
    expect(rows.first).to_contain_text(tenant.member.email)
    shot(page, "4-task-list-search")

    main_nav.get_by_role("link", name="Approvals").click()
    card = page.locator(f"#approval-{approval.pk}")
    expect(card).to_contain_text("Laptop for Maria")
    expect(card).to_contain_text("1800.00 EUR")
    shot(page, "5-approvals-inbox")
    card.get_by_role("button", name=re.compile("^Approve")).click()
    expect(page.get_by_role("status").first).to_contain_text("Approved: Laptop for Maria")
    expect(page.locator(f"#decided-{approval.pk}")).to_contain_text("Approved")
    expect(page.locator(f"#decided-{approval.pk}")).to_contain_text(tenant.manager.email)
    shot(page, "6-approved")
    approval.refresh_from_db()
    assert approval.status == "approved"
    assert approval.decided_by_id == tenant.manager.pk
    assert ApprovalRequest.objects.for_org(tenant.organization).filter(status="pending").count() == 0


def test_keyboard_reaches_the_task_form_and_the_timeline_replays(transactional_db, live_server, browser):
    """Tab from the skip link reaches the main content; a task page catches up on events written after it loaded."""
    from playwright.sync_api import expect

    from automation.services.tasks import task_start, task_update
    from tests.conftest import make_tenant
    from tests.portal.factories import make_task

    tenant = make_tenant("acme", "Acme Corp")
    task = make_task(tenant.organization, title="Prepare the first day", actor=tenant.owner)
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    log_in(page, base, tenant.member.email)
    page.goto(f"{base}/orgs/acme/tasks/{task.pk}/")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    expect(page.locator("#timeline li")).to_have_count(1)

    # Events written while the page is open (the live server has no socket): the page fetches what follows
    # its last sequence number when it becomes visible again, appends each once, and updates the status.
    task_update(task=task, actor=tenant.owner, priority=90)
    task_start(task=task, actor=tenant.owner)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#timeline li")).to_have_count(3)
    expect(page.locator("#task-status")).to_have_text("In progress")
    sequences = page.locator("#timeline li").evaluate_all("items => items.map(li => Number(li.dataset.sequence))")
    assert sequences == [1, 2, 3]
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_timeout(300)
    expect(page.locator("#timeline li")).to_have_count(3)  # nothing appended twice
    summaries = page.locator("#timeline .event-summary").all_text_contents()
    assert summaries[-1] == "pending → in_progress: started"
    shot(page, "7-timeline-caught-up")


PHONE_PAGES = ["", "tasks/", "tasks/new/", "tasks/{task}/", "tasks/{parent}/graph/", "schedules/",
               "schedules/new/cron/", "approvals/", "usage/"]


def test_every_portal_page_fits_a_phone(transactional_db, live_server, browser):
    """On a 375 px wide screen no portal page scrolls sideways (wide graphs and charts scroll inside their box)."""
    from automation.services.schedules import schedule_create
    from automation.services.tasks import task_complete, task_start
    from tests.conftest import make_tenant
    from tests.portal.factories import hours_ago, make_approval, make_llm_call, make_task, make_workflow

    tenant = make_tenant("acme", "Acme Corp")
    org = tenant.organization
    task = make_task(org, title="Send the welcome pack to Maria Lopez, QA engineer", actor=tenant.owner,
                     description="Hardware, accounts and a buddy.")
    flow = make_workflow(org, {"accounts": [], "equipment": [], "welcome": ["accounts"], "buddy": [],
                               "first_day": ["accounts", "equipment", "buddy"], "review": ["first_day", "welcome"]})
    task_start(task=flow["accounts"], actor=tenant.owner)
    task_complete(task=flow["accounts"], actor=tenant.owner)
    task_start(task=flow["equipment"], actor=tenant.owner)
    schedule_create(organization=org, actor=tenant.owner, name="Weekly report", kind="cron",
                    cron_expression="0 9 * * 1", task_title="Write the weekly report")
    make_approval(org, requested_by=tenant.member, cost_estimate="120.00", currency="EUR")
    for hours, locality in ((2, "cloud"), (30, "local"), (60, "cloud")):
        make_llm_call(org, user=tenant.member, locality=locality, at=hours_ago(hours))
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    log_in(page, base, tenant.owner.email)
    for index, path in enumerate(PHONE_PAGES):
        url = f"{base}/orgs/acme/{path.format(task=task.pk, parent=flow['parent'].pk)}"
        name = path.strip("/").replace("/", "-").replace("{", "").replace("}", "") or "dashboard"
        page.set_viewport_size({"width": 1280, "height": 900})
        assert page.goto(url).status == 200, url
        shot(page, f"wide-{index:02d}-{name}")
        page.set_viewport_size({"width": 375, "height": 740})
        shot(page, f"phone-{index:02d}-{name}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), url


def test_schedule_form_previews_next_runs_and_shows_the_services_error(transactional_db, live_server, browser):
    """The cron form previews the next runs without saving; a bad expression is shown on its field."""
    from playwright.sync_api import expect

    from automation.models import Schedule
    from tests.conftest import make_tenant

    tenant = make_tenant("acme", "Acme Corp")
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    log_in(page, base, tenant.member.email)
    page.goto(f"{base}/orgs/acme/schedules/")
    page.get_by_role("link", name="Cron schedule").click()
    page.get_by_label("Name").fill("Weekday stand-up notes")
    page.get_by_label("Cron expression").fill("30 9 * * 1-5")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Task title").fill("Collect stand-up notes")
    page.get_by_role("button", name="Preview next runs").click()
    expect(page.locator(".next-runs li")).to_have_count(5)
    shot(page, "8-schedule-preview")
    assert not Schedule.objects.for_org(tenant.organization).exists()
    page.get_by_label("Cron expression").fill("30 25 * * *")
    page.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_label("Cron expression")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("main form")).to_contain_text("is not a valid cron expression")
    shot(page, "9-schedule-error")
    page.get_by_label("Cron expression").fill("30 9 * * 1-5")
    page.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Weekday stand-up notes")
    expect(page.locator(".next-runs li")).to_have_count(10)
    shot(page, "10-schedule-detail")


def test_the_graph_steps_are_links_reachable_by_keyboard(transactional_db, live_server, browser):
    """Tab moves from the graph's scroll box into the step boxes; Enter opens the step's task page."""
    from playwright.sync_api import expect

    from tests.conftest import make_tenant
    from tests.portal.factories import make_workflow

    tenant = make_tenant("acme", "Acme Corp")
    flow = make_workflow(tenant.organization, {"accounts": [], "welcome": ["accounts"]})
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    log_in(page, live_server.url, tenant.viewer.email)
    page.goto(f"{live_server.url}/orgs/acme/tasks/{flow['parent'].pk}/graph/")
    page.locator(".dag-scroll").focus()
    page.keyboard.press("Tab")
    focused = page.locator(":focus")
    expect(focused).to_have_attribute("href", f"/orgs/acme/tasks/{flow['accounts'].pk}/")
    shot(page, "11-graph-keyboard-focus")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("href", f"/orgs/acme/tasks/{flow['welcome'].pk}/")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Step welcome")
