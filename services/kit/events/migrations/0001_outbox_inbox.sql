-- The kit's event tables, applied to every service database that publishes or consumes events.

-- Transactional outbox: a row is written in the same transaction as the change it
-- announces; the relay publishes it (publisher confirms) and only then sets published_at.
CREATE TABLE event_outbox (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid NOT NULL UNIQUE,
    type            text NOT NULL,
    version         integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    subject         text NOT NULL,
    correlation_id  text,
    data            jsonb NOT NULL,
    -- Failed publications (broker refused or nobody bound) wait until next_attempt_at.
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    published_at    timestamptz,
    -- Set when an event stayed unroutable past the unroutable window (kept for inspection).
    discarded_at    timestamptz
);

-- The relay's work list: only pending rows, in write order.
CREATE INDEX event_outbox_pending ON event_outbox (position)
    WHERE published_at IS NULL AND discarded_at IS NULL;

-- Pruning finished rows after the retention period.
CREATE INDEX event_outbox_finished ON event_outbox ((coalesce(published_at, discarded_at)))
    WHERE published_at IS NOT NULL OR discarded_at IS NOT NULL;

-- Inbox: one row per event id this service has handled, written in the same
-- transaction as the handler's effect, so a redelivered event has no second effect.
CREATE TABLE event_inbox (
    event_id    uuid PRIMARY KEY,
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX event_inbox_received_at ON event_inbox (received_at);
