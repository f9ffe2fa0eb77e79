-- Gantry's control-plane state on SQLite. Append-only: never edit a landed migration,
-- add the next one.

CREATE TABLE releases (
    id          TEXT PRIMARY KEY,            -- sha256:<hex> of the canonical content
    project     TEXT NOT NULL,
    alias       TEXT NOT NULL,               -- the short name people type
    labels      TEXT NOT NULL DEFAULT '{}',  -- JSON object, user labels
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    UNIQUE (project, alias)
);

CREATE TABLE release_artifacts (
    release_id  TEXT NOT NULL REFERENCES releases (id),
    component   TEXT NOT NULL,
    source      TEXT NOT NULL,               -- the reference it was resolved from
    digest      TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',  -- JSON object, image config labels
    PRIMARY KEY (release_id, component)
);

-- One row per environment: the pointer (with a version for compare-and-swap) and the hold.
CREATE TABLE environments (
    project      TEXT NOT NULL,
    name         TEXT NOT NULL,
    release_id   TEXT REFERENCES releases (id),
    version      INTEGER NOT NULL DEFAULT 0,
    since        TEXT,
    moved_by     TEXT,
    held         INTEGER NOT NULL DEFAULT 0,
    hold_by      TEXT,
    hold_reason  TEXT,
    hold_since   TEXT,
    PRIMARY KEY (project, name)
);

CREATE TABLE promotions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    project             TEXT NOT NULL,
    environment         TEXT NOT NULL,
    release_id          TEXT NOT NULL REFERENCES releases (id),
    kind                TEXT NOT NULL,       -- promote | rollback | automatic
    state               TEXT NOT NULL,       -- queued | running | succeeded | failed | cancelled | superseded
    requested_by        TEXT NOT NULL,
    requested_at        TEXT NOT NULL,
    reason              TEXT,
    started_at          TEXT,
    finished_at         TEXT,
    error               TEXT,
    previous_release_id TEXT,                -- what the environment held when this ran
    idempotency_key     TEXT,
    UNIQUE (project, idempotency_key)
);
CREATE INDEX promotions_by_environment ON promotions (project, environment, state, id);
CREATE INDEX promotions_by_release ON promotions (release_id, state);

-- The ledger: canonical JSON entries chained by hash. The database itself refuses to
-- change or remove one.
CREATE TABLE ledger (
    sequence  INTEGER PRIMARY KEY,
    hash      TEXT NOT NULL,                 -- hex SHA-256 of `entry`
    entry     TEXT NOT NULL                  -- RFC 8785 canonical JSON
);
CREATE TRIGGER ledger_refuses_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: entries are never updated');
END;
CREATE TRIGGER ledger_refuses_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: entries are never deleted');
END;

CREATE TABLE checkpoints (
    size        INTEGER PRIMARY KEY,         -- entries covered
    note        TEXT NOT NULL,               -- C2SP signed note
    created_at  TEXT NOT NULL
);
CREATE TRIGGER checkpoints_refuse_update BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only');
END;
CREATE TRIGGER checkpoints_refuse_delete BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only');
END;
