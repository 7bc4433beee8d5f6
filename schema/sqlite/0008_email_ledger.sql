-- See the PostgreSQL migration of the same name.
CREATE TABLE email_ledger
(
    event_id   text NOT NULL,
    recipient  text NOT NULL,
    message_id text NOT NULL,
    sent_at    text NOT NULL,
    PRIMARY KEY (event_id, recipient)
) STRICT;
