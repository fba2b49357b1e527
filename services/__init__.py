"""Quartet services. Each service imports only :mod:`services.kit`, never another service."""
