-- Gates: evidence, approvals, decisions and stopped lines. Append-only migrations.

ALTER TABLE promotions ADD COLUMN emergency INTEGER NOT NULL DEFAULT 0;

-- Raw evidence by digest, with its parsed summary; one row per (release, component, bytes).
CREATE TABLE evidence (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project     TEXT NOT NULL,
    release_id  TEXT NOT NULL REFERENCES releases (id),
    component   TEXT NOT NULL DEFAULT '',    -- '' means the whole release
    kind        TEXT NOT NULL,
    digest      TEXT NOT NULL,               -- sha256 of `raw`
    raw         BLOB NOT NULL,
    summary     TEXT NOT NULL,               -- JSON
    source      TEXT NOT NULL,               -- api | registry
    added_by    TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    UNIQUE (release_id, component, digest)
);
CREATE INDEX evidence_by_release ON evidence (project, release_id);

CREATE TABLE approvals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    release_id   TEXT NOT NULL REFERENCES releases (id),
    environment  TEXT NOT NULL,
    user         TEXT NOT NULL,
    approve      INTEGER NOT NULL,           -- 1 approve, 0 reject
    comment      TEXT,
    at           TEXT NOT NULL
);
CREATE INDEX approvals_by_release ON approvals (project, release_id, environment);

CREATE TABLE decisions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    release_id   TEXT NOT NULL REFERENCES releases (id),
    environment  TEXT NOT NULL,
    promotion_id INTEGER,
    verdict      TEXT NOT NULL,              -- allow | pending | deny
    detail       TEXT NOT NULL,              -- JSON: gates, warnings, wake_at, emergency
    policies     TEXT NOT NULL DEFAULT '[]', -- JSON [[name, digest]]
    evidence     TEXT NOT NULL DEFAULT '[]', -- JSON [digest]
    decided_by   TEXT NOT NULL,
    decided_at   TEXT NOT NULL
);
CREATE INDEX decisions_by_release ON decisions (project, release_id, environment, id);

-- A stopped line per project ('' environment) or environment; deleted on resume (the
-- ledger keeps both events).
CREATE TABLE stops (
    project      TEXT NOT NULL,
    environment  TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL,
    stopped_by   TEXT NOT NULL,
    since        TEXT NOT NULL,
    PRIMARY KEY (project, environment)
);
