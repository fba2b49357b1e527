"""The building blocks every Quartet service stands on.

No domain code lives here and nothing here imports a service: settings, the app
factory, problem+json errors, logging, metrics, health, the database pool and
migrations, the hypercorn runner (and, as they arrive, events and security).
"""
