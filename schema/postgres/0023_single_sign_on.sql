-- Issue 20, single sign-on (docs/single-sign-on.md). The settings are events of the
-- organization; what is kept here must not be in an event, or is a sign-in under way.

-- OpenID client secrets by id, written before the event that names them.
CREATE TABLE sso_secrets
(
    secret_id       text   NOT NULL PRIMARY KEY,
    organization_id text   NOT NULL,
    secret          text   NOT NULL,
    created_ms      bigint NOT NULL
);

-- Sign-ins sent to the provider and not yet back: what the answer must match (state,
-- nonce) and prove (the PKCE verifier). Each is taken once (used_ms), within minutes.
CREATE TABLE sso_logins
(
    state           text   NOT NULL PRIMARY KEY,
    organization_id text   NOT NULL,
    issuer          text   NOT NULL,
    nonce           text   NOT NULL,
    code_verifier   text   NOT NULL,
    created_ms      bigint NOT NULL,
    used_ms         bigint
);

CREATE INDEX sso_logins_by_age ON sso_logins (created_ms);
