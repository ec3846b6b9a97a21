-- Closed 5-minute windows as the workers computed them; equals v_ops_5min for closed buckets.
CREATE TABLE ops_metrics_5min (
    bucket         timestamptz      NOT NULL,
    app            text             NOT NULL,
    env            text             NOT NULL,
    event          text             NOT NULL,
    total          bigint           NOT NULL,
    avg_latency_ms double precision NULL,
    p95_latency_ms double precision NULL,
    failure_rate   double precision NOT NULL,
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (bucket, app, env, event)
);
-- Dashboard reads: one series over a period.
CREATE INDEX ops_metrics_5min_key_bucket_idx ON ops_metrics_5min (app, env, event, bucket);

-- ops_rollup: the workers' window writer. It upserts the rollup and reads ops_metrics to check
-- each closed window against the stored rows (the reconciliation, see docs/windows.md).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ops_rollup') THEN
        CREATE ROLE ops_rollup LOGIN;
    END IF;
END
$$;
ALTER ROLE ops_rollup NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;

ALTER TABLE ops_metrics_5min OWNER TO ops_owner;
REVOKE ALL ON ops_metrics_5min FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ops_rollup;
GRANT SELECT, INSERT, UPDATE ON ops_metrics_5min TO ops_rollup;
GRANT SELECT ON ops_metrics_5min TO ops_reader;
GRANT SELECT ON ops_metrics TO ops_rollup;

ALTER TABLE ops_metrics_5min ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_metrics_5min FORCE ROW LEVEL SECURITY;
CREATE POLICY ops_metrics_5min_select ON ops_metrics_5min FOR SELECT
    TO ops_reader, ops_rollup USING (true);
CREATE POLICY ops_metrics_5min_insert ON ops_metrics_5min FOR INSERT
    TO ops_rollup WITH CHECK (true);
CREATE POLICY ops_metrics_5min_update ON ops_metrics_5min FOR UPDATE
    TO ops_rollup USING (true) WITH CHECK (true);

-- The SELECT policy on ops_metrics now admits the reconciliation as well as readers.
ALTER POLICY ops_metrics_select ON ops_metrics TO ops_reader, ops_rollup;
GRANT SELECT ON v_ops_5min TO ops_rollup;

-- The reconciliation reads one (key, bucket) of v_ops_5min at a time; this index matches the
-- view's grouping expression so that read touches only that window's rows.
CREATE INDEX ops_metrics_key_bucket_idx ON ops_metrics
    (app, env, event, date_bin('5 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00'));
