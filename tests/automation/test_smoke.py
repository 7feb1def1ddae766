from automation.models import TaskStatus
from automation.services.tasks import task_create


def test_diamond_inline(tenant_a, engine):
    org = tenant_a.organization
    a = task_create(organization=org, actor=tenant_a.member, title="A", source="api")
    b = task_create(organization=org, actor=None, title="B", source="api", depends_on=[a])
    c = task_create(organization=org, actor=None, title="C", source="api", depends_on=[a])
    d = task_create(organization=org, actor=None, title="D", source="api", depends_on=[b, c])
    engine.drain()
    for t in (a, b, c, d):
        t.refresh_from_db()
        assert t.status == TaskStatus.COMPLETED, (t, t.status)
