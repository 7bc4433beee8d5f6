-- Personal access tokens; see the PostgreSQL migration of the same number.
CREATE TABLE api_token_secrets
(
    token_id        text NOT NULL PRIMARY KEY,
    organization_id text NOT NULL,
    secret_hash     text NOT NULL,
    last_used_at    text
);
