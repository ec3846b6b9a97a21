-- The alert agent's memory. ops_alerts holds one row per (rule, series): where its state machine
-- stands (inactive/pending/firing/resolved) and which closed window it judged last, so a restart
-- neither forgets nor judges a window twice. ops_alert_notifications is every firing/resolution
-- (the dashboard's recent-alerts list) and, when armed, the outbox of Slack messages.
CREATE TABLE ops_alerts (
    rule             text             NOT NULL,
    app              text             NOT NULL,
    env              text             NOT NULL,
    event            text             NOT NULL,
    state            text             NOT NULL
        CHECK (state IN ('inactive', 'pending', 'firing', 'resolved')),
    streak           integer          NOT NULL DEFAULT 0,
    last_bucket      timestamptz      NOT NULL,
    last_value       double precision NULL,
    since            timestamptz      NOT NULL DEFAULT now(),
    last_notified_at timestamptz      NULL,
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, app, env, event)
);
CREATE INDEX ops_alerts_firing_idx ON ops_alerts (state) WHERE state = 'firing';

CREATE TABLE ops_alert_notifications (
    id           bigserial        PRIMARY KEY,
    created_at   timestamptz      NOT NULL DEFAULT now(),
    rule         text             NOT NULL,
    app          text             NOT NULL,
    env          text             NOT NULL,
    event        text             NOT NULL,
    kind         text             NOT NULL CHECK (kind IN ('firing', 'repeat', 'resolved')),
    severity     text             NOT NULL,
    bucket       timestamptz      NOT NULL,
    metric       text             NOT NULL,
    value        double precision NULL,
    threshold    double precision NOT NULL,
    message      text             NOT NULL,
    -- dry_run: logged only; pending: waiting for Slack; sent: Slack accepted it.
    delivery     text             NOT NULL CHECK (delivery IN ('dry_run', 'pending', 'sent')),
    attempts     integer          NOT NULL DEFAULT 0,
    last_error   text             NULL,
    sent_at      timestamptz      NULL
);
CREATE INDEX ops_alert_notifications_recent_idx ON ops_alert_notifications (created_at DESC);
CREATE INDEX ops_alert_notifications_outbox_idx ON ops_alert_notifications (id)
    WHERE delivery = 'pending';

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ops_alerter') THEN
        CREATE ROLE ops_alerter LOGIN;
    END IF;
END
$$;
ALTER ROLE ops_alerter NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;

ALTER TABLE ops_alerts OWNER TO ops_owner;
ALTER TABLE ops_alert_notifications OWNER TO ops_owner;
REVOKE ALL ON ops_alerts, ops_alert_notifications FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ops_alerter;
GRANT SELECT, INSERT, UPDATE ON ops_alerts, ops_alert_notifications TO ops_alerter;
GRANT USAGE ON SEQUENCE ops_alert_notifications_id_seq TO ops_alerter;
GRANT SELECT ON ops_alerts, ops_alert_notifications TO ops_reader;
GRANT SELECT ON ops_metrics_5min TO ops_alerter;

ALTER TABLE ops_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY ops_alerts_read ON ops_alerts FOR SELECT TO ops_reader, ops_alerter USING (true);
CREATE POLICY ops_alerts_insert ON ops_alerts FOR INSERT TO ops_alerter WITH CHECK (true);
CREATE POLICY ops_alerts_update ON ops_alerts FOR UPDATE TO ops_alerter
    USING (true) WITH CHECK (true);

ALTER TABLE ops_alert_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_alert_notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY ops_alert_notifications_read ON ops_alert_notifications FOR SELECT
    TO ops_reader, ops_alerter USING (true);
CREATE POLICY ops_alert_notifications_insert ON ops_alert_notifications FOR INSERT
    TO ops_alerter WITH CHECK (true);
CREATE POLICY ops_alert_notifications_update ON ops_alert_notifications FOR UPDATE
    TO ops_alerter USING (true) WITH CHECK (true);

-- The agent reads the closed windows written since its last evaluation.
ALTER POLICY ops_metrics_5min_select ON ops_metrics_5min TO ops_reader, ops_rollup, ops_alerter;
CREATE INDEX ops_metrics_5min_updated_idx ON ops_metrics_5min (updated_at);
