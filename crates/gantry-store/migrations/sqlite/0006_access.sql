-- Access: every token belongs to a principal (a user, `alice`, or a service account,
-- `service:ci`), and grants give principals roles over the server, a project or one
-- environment. Tokens made before this act for a user of their own name.
ALTER TABLE tokens ADD COLUMN principal TEXT;
UPDATE tokens SET principal = name WHERE principal IS NULL;

CREATE TABLE grants (
    principal   TEXT NOT NULL,                -- `alice` or `service:ci`
    role        TEXT NOT NULL,                -- viewer, promoter, approver, admin
    project     TEXT NOT NULL DEFAULT '',     -- '' for the whole server
    environment TEXT NOT NULL DEFAULT '',     -- '' for the whole project
    granted_by  TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    PRIMARY KEY (principal, role, project, environment)
);

-- Before roles every token could do everything: the principals of tokens still in use
-- become admins of the server, once, so an upgrade locks nobody out.
INSERT INTO grants (principal, role, project, environment, granted_by, granted_at)
SELECT DISTINCT principal, 'admin', '', '', 'gantry (upgrade to roles)',
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM tokens
WHERE revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
