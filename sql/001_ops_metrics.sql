-- Every accepted telemetry event, one row per id. Written by the workers only.
CREATE TABLE ops_metrics (
    id          uuid        PRIMARY KEY,
    ts          timestamptz NOT NULL,              -- event time (bucketing uses this)
    app         text        NOT NULL,
    env         text        NOT NULL,
    event       text        NOT NULL,
    ok          boolean     NOT NULL,
    latency_ms  integer     NULL CHECK (latency_ms >= 0),
    err_code    text        NULL,
    extra       jsonb       NULL,
    received_at timestamptz NOT NULL               -- when the gateway accepted it
);

-- Time-range scans (the view over a period, retention).
CREATE INDEX ops_metrics_ts_idx ON ops_metrics (ts);
-- Per-series scans: one app/env/event over a period.
CREATE INDEX ops_metrics_key_ts_idx ON ops_metrics (app, env, event, ts);
