-- Users whose account was deleted (from user.deleted). Their access tokens may live a few
-- minutes more; creates for them are refused so no data outlives the account.
CREATE TABLE deleted_users (
    user_id    uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
