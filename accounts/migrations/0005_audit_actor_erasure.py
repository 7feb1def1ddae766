from django.db import migrations

# SECURITY: audit rows stay append-only. The one change allowed is the
# ON DELETE SET NULL of ``actor`` when a user account is deleted; the row keeps
# ``actor_label``, and every other column must stay exactly as it was.
FORBID = """
CREATE OR REPLACE FUNCTION accounts_audit_forbid_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""
STRICT = """
CREATE OR REPLACE FUNCTION accounts_audit_forbid_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_approval_transitions")]
    operations = [migrations.RunSQL(FORBID, STRICT)]
