-- The sweeper (services/reports/sweeper.py) re-publishes or fails jobs stuck without progress.
-- progressed_at: the last time anything happened to an unfinished job (created, started, a page
-- fetched, a retry noted, re-published). sweeps: how many times the sweeper re-published it.
ALTER TABLE report_jobs ADD COLUMN progressed_at timestamptz;
UPDATE report_jobs SET progressed_at = coalesce(started_at, created_at);
ALTER TABLE report_jobs ALTER COLUMN progressed_at SET DEFAULT clock_timestamp();
ALTER TABLE report_jobs ALTER COLUMN progressed_at SET NOT NULL;
ALTER TABLE report_jobs ADD COLUMN sweeps integer NOT NULL DEFAULT 0;
CREATE INDEX report_jobs_unfinished_progress ON report_jobs (progressed_at) WHERE status IN ('queued', 'running');
