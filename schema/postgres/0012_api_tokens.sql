-- Personal access tokens (docs/personal-data.md): the organization's events say which
-- tokens exist, whose they are, their scopes and expiry; the hash of each token's secret
-- lives here, written in the same statement as the event that issues it. When it was
-- last used is operational data, kept here and not in the history.
CREATE TABLE api_token_secrets
(
    token_id        text        PRIMARY KEY,
    organization_id text        NOT NULL,
    secret_hash     text        NOT NULL,
    last_used_at    timestamptz
);
