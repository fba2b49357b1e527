"""All SQL of the reports service, one module per table group, each function taking a connection.

- :mod:`services.reports.store.read_model`: the read model fed by todo events (``todo_facts``,
  the per-day counts), the summary, and purging a deleted user.
- :mod:`services.reports.store.report_jobs`: report jobs and their files (``report_jobs``,
  ``report_files``): what the API, the worker and the sweeper run.
"""
