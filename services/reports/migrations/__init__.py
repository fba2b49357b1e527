"""The reports database's migrations: the kit's event tables, then this folder's ``NNNN_name.sql`` files.

A module of its own (it imports no Quart) so the app and the worker, a process of its
own, both migrate from the one list.
"""

from __future__ import annotations

from pathlib import Path

from services.kit.events import MIGRATIONS as EVENT_MIGRATIONS
from services.kit.migrations import MigrationSource

MIGRATIONS = [EVENT_MIGRATIONS, MigrationSource("reports", Path(__file__).parent)]
