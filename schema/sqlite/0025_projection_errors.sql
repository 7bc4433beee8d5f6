-- The last error of each read model's projector while it keeps failing (operators see it
-- beside the model's position and lag); removed when the projector goes on again.
CREATE TABLE projection_errors
(
    name      text PRIMARY KEY,
    error     text NOT NULL,
    failed_at text NOT NULL
) STRICT;
