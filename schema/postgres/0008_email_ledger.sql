-- One row per mail the email worker sent: the event that caused it and its recipient.
-- A redelivered event finds its rows and sends nothing twice.
CREATE TABLE email_ledger
(
    event_id   text NOT NULL,
    recipient  text NOT NULL,
    message_id text NOT NULL,
    sent_at    timestamptz NOT NULL,
    PRIMARY KEY (event_id, recipient)
);
