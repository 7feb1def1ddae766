from django.db import migrations

# The legal (from, to) pairs of automation.services.status.TRANSITIONS when this
# migration was written; tests check that the two agree.
PAIRS = (
    "('blocked','cancelled'), ('blocked','completed'), ('blocked','failed'), ('blocked','pending'), "
    "('blocked','queued'), ('failed','blocked'), ('failed','pending'), "
    "('in_progress','blocked'), ('in_progress','cancelled'), ('in_progress','completed'), "
    "('in_progress','failed'), ('in_progress','queued'), ('paused','cancelled'), ('paused','pending'), "
    "('pending','blocked'), ('pending','cancelled'), ('pending','completed'), "
    "('pending','in_progress'), ('pending','paused'), ('pending','queued'), ('pending','skipped'), "
    "('queued','cancelled'), ('queued','in_progress'), ('queued','paused'), "
    "('queued','pending'), ('skipped','pending')"
)

GUARD = f"""
CREATE OR REPLACE FUNCTION automation_task_status_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('pending', 'queued') THEN
            RAISE EXCEPTION 'a task starts pending or queued, not %', NEW.status USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.status IS DISTINCT FROM NEW.status
       AND (OLD.status, NEW.status) NOT IN (VALUES {PAIRS}) THEN
        RAISE EXCEPTION 'illegal task status transition from % to % (task %)', OLD.status, NEW.status, OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER automation_task_status_guard
    BEFORE INSERT OR UPDATE OF status ON automation_task
    FOR EACH ROW EXECUTE FUNCTION automation_task_status_guard();

CREATE OR REPLACE FUNCTION automation_taskevent_forbid_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'task events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER automation_taskevent_append_only
    BEFORE UPDATE OR DELETE ON automation_taskevent
    FOR EACH ROW EXECUTE FUNCTION automation_taskevent_forbid_change();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS automation_task_status_guard ON automation_task;
DROP FUNCTION IF EXISTS automation_task_status_guard();
DROP TRIGGER IF EXISTS automation_taskevent_append_only ON automation_taskevent;
DROP FUNCTION IF EXISTS automation_taskevent_forbid_change();
"""


class Migration(migrations.Migration):
    dependencies = [("automation", "0001_initial")]
    operations = [migrations.RunSQL(GUARD, UNGUARD)]
