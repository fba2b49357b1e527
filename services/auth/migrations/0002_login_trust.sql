-- When each counter last counted an attempt: the account-wide counter for unknown sources
-- makes the next attempt wait from it (progressive delay), and stale rows are found by it.
ALTER TABLE login_failures ADD COLUMN last_at timestamptz NOT NULL DEFAULT now();

-- Address keys (an IPv4 address, an IPv6 /64) an account signed in from: attempts from
-- them are judged by their own budget, not by the account-wide one for unknown sources.
CREATE TABLE login_known_addresses (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address_key     text NOT NULL,
    last_success_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, address_key)
);
