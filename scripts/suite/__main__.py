"""``python -m scripts.suite up | down | restart | ps | logs | infra | urls | secrets | k8s-local-secrets``."""

import os
import sys

from scripts.suite.cli import main

try:
    sys.exit(main())
except BrokenPipeError:  # `make ps | head`: the reader left, nothing is wrong
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
