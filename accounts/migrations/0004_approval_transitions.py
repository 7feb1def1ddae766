from django.db import migrations

# The approval status machine, backed by the database: a decided approval is
# never decided again; only ``approved -> voided`` (arguments changed) follows a decision.
FORBID = """
CREATE OR REPLACE FUNCTION accounts_approval_guard_transition() RETURNS trigger AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT (
            (OLD.status = 'pending' AND NEW.status IN ('approved', 'rejected', 'expired', 'voided'))
            OR (OLD.status = 'approved' AND NEW.status = 'voided')
        ) THEN
            RAISE EXCEPTION 'approval % cannot move from % to %', OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF OLD.status <> 'pending' AND (
        NEW.arguments_hash IS DISTINCT FROM OLD.arguments_hash
        OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
    ) THEN
        RAISE EXCEPTION 'approval % was decided: its arguments and organization are fixed', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_approvalrequest_transition
    BEFORE UPDATE ON accounts_approvalrequest
    FOR EACH ROW EXECUTE FUNCTION accounts_approval_guard_transition();
"""
ALLOW = """
DROP TRIGGER IF EXISTS accounts_approvalrequest_transition ON accounts_approvalrequest;
DROP FUNCTION IF EXISTS accounts_approval_guard_transition();
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_approvals")]
    operations = [migrations.RunSQL(FORBID, ALLOW)]
