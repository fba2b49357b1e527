"""Todos: each user's todo list, owned by the token's subject."""
