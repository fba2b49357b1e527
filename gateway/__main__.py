"""``python -m gateway``: serve the gateway on settings.host:settings.port under uvloop.

Run by the kit's runner (:mod:`services.kit.runner`). SIGTERM (or SIGINT) drains:
/readyz turns 503 at once, after ``drain_delay_seconds`` the listener closes,
requests in flight get up to ``shutdown_grace_seconds`` to finish, then the client
session closes and the process exits 0. ``/metrics`` is served on a private
listener of its own (``METRICS_HOST``:``METRICS_PORT``): see :mod:`gateway.process`.
"""

import sys

from gateway.config import GatewaySettings
from gateway.process import GatewayProcess
from services.kit.runner import main

sys.exit(main(GatewaySettings, GatewayProcess))
