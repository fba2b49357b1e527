-- The auth service's tables: users, OAuth clients, signing keys, codes and tokens, login throttling.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,          -- normalised (trimmed, lower case)
    name          text,
    password_hash text NOT NULL,                 -- argon2id, PHC string
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE oauth_clients (
    client_id     text PRIMARY KEY,
    name          text NOT NULL,
    secret_hash   text,                          -- argon2id; NULL for a public client
    redirect_uris text[] NOT NULL DEFAULT '{}',  -- matched exactly
    grant_types   text[] NOT NULL,
    scopes        text[] NOT NULL,               -- the most this client may ever get
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Token signing keys. The current key is the newest activated one; a key stays in the
-- JWKS until the last token it signed has expired.
CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    alg          text NOT NULL,
    private_jwk  jsonb NOT NULL,
    public_jwk   jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz NOT NULL
);

-- Secrets this service makes for itself (the CSRF signing key), shared by every instance.
CREATE TABLE service_secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A grant: everything issued from one login (code → access and refresh tokens, rotations).
-- Reusing a spent code or refresh token revokes the whole family.
CREATE TABLE token_families (
    id         uuid PRIMARY KEY,
    client_id  text NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    user_id    uuid REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE TABLE authorization_codes (
    code_hash             bytea PRIMARY KEY,     -- sha256 of the code: the code itself is never stored
    family_id             uuid NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    client_id             text NOT NULL,
    user_id               uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri          text NOT NULL,
    scope                 text NOT NULL,
    code_challenge        text NOT NULL,
    code_challenge_method text NOT NULL,
    auth_time             timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    used_at               timestamptz
);

CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,                -- sha256 of the token
    family_id  uuid NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    scope      text NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz                       -- set when exchanged: any later use is a reuse
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Access tokens are JWTs checked locally by every service; this record serves
-- introspection and revocation at the auth service.
CREATE TABLE access_tokens (
    jti        uuid PRIMARY KEY,
    family_id  uuid REFERENCES token_families (id) ON DELETE CASCADE,
    client_id  text NOT NULL,
    user_id    uuid REFERENCES users (id) ON DELETE CASCADE,
    scope      text NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX access_tokens_family ON access_tokens (family_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

-- Failed logins per key ("account:<sha256 of email>" or "address:<ip>") in a fixed window.
CREATE TABLE login_failures (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    window_start timestamptz NOT NULL
);
