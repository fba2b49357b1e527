-- Read model: one row per todo as the events describe it. Counts are derived from
-- these rows (never incremented), so a redelivered or reordered event cannot skew them.
CREATE TABLE todo_facts (
    owner_id    uuid NOT NULL,
    todo_id     uuid NOT NULL,
    is_finished boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    finished_at timestamptz,
    -- The todo's updated_at in the newest event applied: older events change nothing.
    updated_at  timestamptz NOT NULL,
    -- A tombstone: a late created/updated event must not bring a deleted todo back.
    deleted     boolean NOT NULL DEFAULT false,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, todo_id)
);
CREATE INDEX todo_facts_owner_created ON todo_facts (owner_id, created_at);

-- Users whose account is gone: todo events that arrive after user.deleted are ignored.
CREATE TABLE deleted_users (
    owner_id   uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE report_jobs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id    uuid NOT NULL,
    format      text NOT NULL CHECK (format IN ('csv', 'pdf', 'json')),
    status      text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress    integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    todo_count  integer,
    attempts    integer NOT NULL DEFAULT 0,
    error       text,
    worker      text,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at  timestamptz,
    finished_at timestamptz
);
CREATE INDEX report_jobs_owner_newest ON report_jobs (owner_id, created_at DESC, id DESC);
CREATE INDEX report_jobs_owner_unfinished ON report_jobs (owner_id) WHERE status IN ('queued', 'running');

-- The rendered file, in PostgreSQL so any instance serves it.
CREATE TABLE report_files (
    job_id       uuid PRIMARY KEY REFERENCES report_jobs (id) ON DELETE CASCADE,
    content_type text NOT NULL,
    filename     text NOT NULL,
    body         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
