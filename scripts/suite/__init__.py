"""The local supervisor: the suite as plain processes on this machine (``python -m scripts.suite``).

The suite is the table of ``table.py``. The commands live beside it:

- ``plan.py``        every process of the plan (instances, ports, env, the gateway's upstreams)
- ``up.py``          ``up``: plan → provision → start → report
- ``down.py``        ``down`` and the rolling ``restart``
- ``control.py``     starting a group and waiting, stopping by name
- ``secrets.py``     ``.env`` and the per-checkout secrets
- ``procs.py``, ``infra.py``, ``broker.py``, ``prometheus.py``: processes, servers, broker users, metrics
- ``cli.py``         the command line (``__main__.py`` runs it)

Only the standard library is needed for ``down``, ``ps`` and ``logs``.
"""
