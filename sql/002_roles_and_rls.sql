-- Roles: ops_owner owns the objects (no login); ops_ingest may only INSERT; ops_reader may
-- only SELECT. Roles are cluster-wide, so they are created only when missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ops_owner') THEN
        CREATE ROLE ops_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ops_ingest') THEN
        CREATE ROLE ops_ingest LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ops_reader') THEN
        CREATE ROLE ops_reader LOGIN;
    END IF;
END
$$;
-- Whatever state the roles were in before, they get no superpowers.
ALTER ROLE ops_owner  NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;
ALTER ROLE ops_ingest NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;
ALTER ROLE ops_reader NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;

ALTER TABLE ops_metrics OWNER TO ops_owner;
REVOKE ALL ON ops_metrics FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ops_ingest, ops_reader;
GRANT INSERT ON ops_metrics TO ops_ingest;
GRANT SELECT ON ops_metrics TO ops_reader;

-- FORCE makes the policies bind the owner too; commands without a policy are refused.
ALTER TABLE ops_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_metrics FORCE ROW LEVEL SECURITY;
CREATE POLICY ops_metrics_insert ON ops_metrics FOR INSERT TO ops_ingest WITH CHECK (true);
CREATE POLICY ops_metrics_select ON ops_metrics FOR SELECT TO ops_reader USING (true);
