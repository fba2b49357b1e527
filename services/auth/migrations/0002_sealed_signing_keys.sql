-- Private signing keys encrypted at rest (envelope encryption, services/auth/sealing.py):
-- the private JWK sealed with a per-key data key, the data key wrapped with a key-encryption
-- key (SIGNING_KEK) that never enters the database. `private_jwk` (plaintext) is kept only
-- until the service's next start seals the rows written before this migration; no new row
-- may hold a plaintext key.
ALTER TABLE signing_keys
    ADD COLUMN sealed_private   bytea,  -- nonce || AES-256-GCM(data key, private JWK), AAD binds kid
    ADD COLUMN wrapped_data_key bytea,  -- nonce || AES-256-GCM(KEK, data key), AAD binds kid and kek_id
    ADD COLUMN kek_id           text,   -- fingerprint of the KEK that wrapped the data key
    ALTER COLUMN private_jwk DROP NOT NULL,
    ADD CONSTRAINT signing_keys_sealed_or_legacy CHECK (
        (private_jwk IS NULL AND sealed_private IS NOT NULL AND wrapped_data_key IS NOT NULL AND kek_id IS NOT NULL)
        OR (private_jwk IS NOT NULL AND sealed_private IS NULL AND wrapped_data_key IS NULL AND kek_id IS NULL)
    );
