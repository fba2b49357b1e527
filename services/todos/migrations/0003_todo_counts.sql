-- How many todos each owner has, for the per-user quota (MAX_TODOS_PER_USER). store.create_todo
-- bumps the owner's row only while it is below the limit (INSERT ... ON CONFLICT DO UPDATE ...
-- WHERE locks the row, so concurrent creates queue on it and cannot pass the limit together);
-- store.delete_todo and store.purge_owner take it down in the same transaction as the rows.
CREATE TABLE todo_counts (
    owner_id uuid PRIMARY KEY,
    todos    integer NOT NULL CHECK (todos >= 0)
);
INSERT INTO todo_counts (owner_id, todos) SELECT owner_id, count(*) FROM todos GROUP BY owner_id;
