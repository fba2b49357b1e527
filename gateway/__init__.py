"""The edge of Quartet: routes by path prefix to the services and streams bodies both ways.

Read it top-down from :mod:`gateway.app`, the only place the parts are wired:
:mod:`gateway.config` (settings), :mod:`gateway.routing` (the route table: upstream, token, budget, timeouts),
:mod:`gateway.proxy` (the streaming proxy), :mod:`gateway.middleware` (request id,
problems, metrics, access log), :mod:`gateway.static` (the SPA under /app/),
:mod:`gateway.health` and :mod:`gateway.metrics`.
"""
