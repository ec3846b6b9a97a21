-- The dashboard's live window reads v_ops_5min for the newest buckets of every series; this
-- index matches the view's grouping expression alone, so `bucket >= …` on the view is an index
-- range scan rather than a scan of all events.
CREATE INDEX ops_metrics_bucket_idx ON ops_metrics
    (date_bin('5 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00'));
-- Recent alerts, newest first, for one series.
CREATE INDEX ops_alert_notifications_key_idx ON ops_alert_notifications
    (app, env, event, created_at DESC);
