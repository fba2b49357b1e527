"""Ping: echo and latency diagnostics. The smallest example of the house shape."""
