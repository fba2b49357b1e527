"""What the todos service keeps for the life of its app: its settings, cursor codec and page cache."""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.cache import PageCache
from services.kit.context import current_state
from services.todos import page_cache
from services.todos.config import TodosSettings
from services.todos.cursor import CursorCodec


@dataclass(frozen=True)
class TodosState:
    settings: TodosSettings
    cursors: CursorCodec
    pages: PageCache

    @classmethod
    def build(cls, settings: TodosSettings) -> TodosState:
        cursors = CursorCodec(settings.cursor_secret.get_secret_value().encode())
        return cls(settings, cursors, page_cache.build(settings))


def todos_state() -> TodosState:
    """The state of the todos app handling the current request."""
    return current_state(TodosState)
