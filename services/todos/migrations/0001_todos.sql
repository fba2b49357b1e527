CREATE TABLE todos (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id    uuid NOT NULL,
    content     text NOT NULL CHECK (char_length(content) BETWEEN 1 AND 1000),
    is_finished boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    version     integer NOT NULL DEFAULT 1
);

-- Newest-first keyset pages: (owner_id, created_at, id) serves the page query
-- without a sort; the second index does the same for the open/finished filters.
CREATE INDEX todos_owner_newest ON todos (owner_id, created_at DESC, id DESC);
CREATE INDEX todos_owner_status_newest ON todos (owner_id, is_finished, created_at DESC, id DESC);

-- The first response to a create with an Idempotency-Key, replayed for its lifetime.
CREATE TABLE idempotency_keys (
    owner_id     uuid NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    status       integer,
    body         jsonb,
    location     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
