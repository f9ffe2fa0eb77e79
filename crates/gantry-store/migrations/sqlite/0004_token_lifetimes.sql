-- Tokens expire and can be revoked; a revoked or expired token authenticates nobody.
ALTER TABLE tokens ADD COLUMN expires_at TEXT;   -- RFC 3339 UTC with milliseconds, or NULL: never
ALTER TABLE tokens ADD COLUMN revoked_at TEXT;
ALTER TABLE tokens ADD COLUMN revoked_by TEXT;
