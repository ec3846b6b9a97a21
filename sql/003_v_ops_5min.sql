-- The seed's 5-minute KPI view. security_invoker: the caller's rights and RLS apply.
-- bucket: event time truncated to 5 minutes, aligned to UTC midnight.
CREATE VIEW v_ops_5min WITH (security_invoker = true) AS
SELECT
    date_bin('5 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')       AS bucket,
    app,
    env,
    event,
    count(*)                                                              AS total,
    avg(latency_ms)::double precision                                     AS avg_latency_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)              AS p95_latency_ms,
    (count(*) FILTER (WHERE NOT ok))::double precision / count(*)         AS failure_rate
FROM ops_metrics
GROUP BY 1, app, env, event;

ALTER VIEW v_ops_5min OWNER TO ops_owner;
REVOKE ALL ON v_ops_5min FROM PUBLIC;
GRANT SELECT ON v_ops_5min TO ops_reader;
