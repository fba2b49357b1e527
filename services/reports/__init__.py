"""Reports: live statistics from todo events, and CSV / PDF / JSON reports rendered by a worker."""
