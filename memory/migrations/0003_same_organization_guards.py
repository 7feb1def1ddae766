"""Database guards: a fact, relationship or conflict only points at rows of its own organization."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION memory_same_org_guard() RETURNS trigger AS $$
DECLARE
    col text;
    ref_table text;
    ref_id bigint;
    ref_org bigint;
    i int := 0;
BEGIN
    -- TG_ARGV holds pairs: column name, referenced table.
    WHILE i < TG_NARGS LOOP
        col := TG_ARGV[i];
        ref_table := TG_ARGV[i + 1];
        EXECUTE format('SELECT ($1).%I', col) INTO ref_id USING NEW;
        IF ref_id IS NOT NULL THEN
            EXECUTE format('SELECT organization_id FROM %I WHERE id = $1', ref_table) INTO ref_org USING ref_id;
            IF ref_org IS DISTINCT FROM NEW.organization_id THEN
                RAISE EXCEPTION 'memory: %.% points at a row of another organization', TG_TABLE_NAME, col
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
        END IF;
        i := i + 2;
    END LOOP;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER memory_fact_same_org BEFORE INSERT OR UPDATE ON memory_fact
    FOR EACH ROW EXECUTE FUNCTION memory_same_org_guard(
        'subject_id', 'memory_entity', 'superseded_by_id', 'memory_fact',
        'source_message_id', 'memory_message', 'expiry_review_id', 'memory_expiryreview');
CREATE TRIGGER memory_relationship_same_org BEFORE INSERT OR UPDATE ON memory_relationship
    FOR EACH ROW EXECUTE FUNCTION memory_same_org_guard('source_id', 'memory_entity', 'target_id', 'memory_entity');
CREATE TRIGGER memory_conflict_same_org BEFORE INSERT OR UPDATE ON memory_conflict
    FOR EACH ROW EXECUTE FUNCTION memory_same_org_guard(
        'existing_fact_id', 'memory_fact', 'proposed_fact_id', 'memory_fact');
"""

REVERSE = """
DROP TRIGGER IF EXISTS memory_fact_same_org ON memory_fact;
DROP TRIGGER IF EXISTS memory_relationship_same_org ON memory_relationship;
DROP TRIGGER IF EXISTS memory_conflict_same_org ON memory_conflict;
DROP FUNCTION IF EXISTS memory_same_org_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("memory", "0002_facts_entities_messages")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
