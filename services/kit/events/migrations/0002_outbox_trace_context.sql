-- The W3C trace context (traceparent, tracestate) of the request that wrote the event, as a
-- JSON object of headers; the relay publishes it as AMQP headers so consumers continue the
-- trace. NULL when the event was written outside any trace (or with tracing off).
ALTER TABLE event_outbox ADD COLUMN trace_context jsonb;
