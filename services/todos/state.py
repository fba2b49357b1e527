"""What the todos service keeps for the life of its app: its settings and its cursor codec."""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.context import current_state
from services.todos.config import TodosSettings
from services.todos.cursor import CursorCodec


@dataclass(frozen=True)
class TodosState:
    settings: TodosSettings
    cursors: CursorCodec

    @classmethod
    def build(cls, settings: TodosSettings) -> TodosState:
        return cls(settings, CursorCodec(settings.cursor_secret.get_secret_value().encode()))


def todos_state() -> TodosState:
    """The state of the todos app handling the current request."""
    return current_state(TodosState)
