"""Live: the suite's events pushed to signed-in users as Server-Sent Events (docs/live.md)."""
