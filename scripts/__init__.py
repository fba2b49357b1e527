"""The suite's own tooling, run from the repository root as ``python -m scripts.<name>``.

``scripts.suite`` is the local supervisor behind ``make up``/``down``/``ps``/``logs``/``restart``;
``scripts.bootstrap`` installs what a fresh machine lacks; ``scripts.seed`` and ``scripts.signin``
are clients of the running suite.
"""
