-- Wakes tailers in other processes (relay, projectors) as soon as events are committed;
-- NOTIFY is delivered at commit, never for a rolled-back append.
CREATE FUNCTION notify_events_appended() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('expensewise_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER notify_events_appended
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();
