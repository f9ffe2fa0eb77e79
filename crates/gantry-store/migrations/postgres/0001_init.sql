-- Gantry's control-plane state on PostgreSQL: the schema of the SQLite migrations
-- 0001..0005 in one, since every PostgreSQL database starts here. Append-only from now
-- on: never edit a landed migration, add the next one.
--
-- How SQLite's types map:
-- * Text that Gantry compares or sorts (ids, names, digests, timestamps) is
--   COLLATE "C": it orders byte by byte, as SQLite does, whatever collation the
--   database was created with.
-- * Timestamps stay TEXT in Gantry's one format (RFC 3339, UTC, milliseconds), the very
--   strings the ledger records; the format sorts as it reads.
-- * JSON documents (labels, summaries, details) stay TEXT: read back byte for byte as
--   written (jsonb would reorder them).
-- * INTEGER AUTOINCREMENT is BIGINT GENERATED ALWAYS AS IDENTITY, 0/1 flags are
--   BOOLEAN, BLOB is BYTEA.

CREATE TABLE releases (
    id          TEXT COLLATE "C" PRIMARY KEY,   -- sha256:<hex> of the canonical content
    -- Creation order, which SQLite reads from its rowid.
    ordinal     BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    project     TEXT COLLATE "C" NOT NULL,
    alias       TEXT COLLATE "C" NOT NULL,      -- the short name people type
    labels      TEXT NOT NULL DEFAULT '{}',     -- JSON object, user labels
    created_at  TEXT COLLATE "C" NOT NULL,
    created_by  TEXT NOT NULL,
    UNIQUE (project, alias)
);
CREATE INDEX releases_by_age ON releases (project, created_at, ordinal);

CREATE TABLE release_artifacts (
    release_id  TEXT COLLATE "C" NOT NULL REFERENCES releases (id),
    component   TEXT COLLATE "C" NOT NULL,
    source      TEXT NOT NULL,                  -- the reference it was resolved from
    digest      TEXT COLLATE "C" NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',     -- JSON object, image config labels
    PRIMARY KEY (release_id, component)
);

-- One row per environment: the pointer (with a version for compare-and-swap) and the hold.
CREATE TABLE environments (
    project      TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    release_id   TEXT COLLATE "C" REFERENCES releases (id),
    version      BIGINT NOT NULL DEFAULT 0,
    since        TEXT COLLATE "C",
    moved_by     TEXT,
    held         BOOLEAN NOT NULL DEFAULT FALSE,
    hold_by      TEXT,
    hold_reason  TEXT,
    hold_since   TEXT COLLATE "C",
    PRIMARY KEY (project, name)
);

CREATE TABLE promotions (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project             TEXT COLLATE "C" NOT NULL,
    environment         TEXT COLLATE "C" NOT NULL,
    release_id          TEXT COLLATE "C" NOT NULL REFERENCES releases (id),
    kind                TEXT NOT NULL,          -- promote | rollback | automatic
    state               TEXT NOT NULL,          -- waiting | queued | running | succeeded | ...
    requested_by        TEXT NOT NULL,
    requested_at        TEXT COLLATE "C" NOT NULL,
    reason              TEXT,
    started_at          TEXT COLLATE "C",
    finished_at         TEXT COLLATE "C",
    error               TEXT,
    previous_release_id TEXT COLLATE "C",       -- what the environment held when this ran
    idempotency_key     TEXT COLLATE "C",
    emergency           BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (project, idempotency_key)
);
CREATE INDEX promotions_by_environment ON promotions (project, environment, state, id);
CREATE INDEX promotions_by_release ON promotions (release_id, state);
-- At most one promotion runs per environment. The store starts one only when none is
-- running there, under the writers' lock; this makes the database refuse a second all
-- the same.
CREATE UNIQUE INDEX promotions_one_running ON promotions (project, environment)
    WHERE state = 'running';

-- Refuses to change or remove rows of an append-only table, whoever asks. Statement
-- triggers, so an UPDATE or DELETE that matches nothing is refused too, and TRUNCATE
-- (which row triggers never see) as well.
CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% append-only: % never %', TG_ARGV[0], TG_ARGV[1],
        CASE TG_OP WHEN 'UPDATE' THEN 'updated' WHEN 'DELETE' THEN 'deleted' ELSE 'truncated' END
        USING ERRCODE = 'restrict_violation';
END
$$;

-- The ledger: canonical JSON entries chained by hash.
CREATE TABLE ledger (
    sequence  BIGINT PRIMARY KEY CHECK (sequence > 0),
    hash      TEXT NOT NULL,                    -- hex SHA-256 of `entry`
    entry     TEXT NOT NULL                     -- RFC 8785 canonical JSON
);
CREATE TRIGGER ledger_is_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite('the ledger is', 'entries are');

CREATE TABLE checkpoints (
    size        BIGINT PRIMARY KEY,             -- entries covered
    note        TEXT NOT NULL,                  -- C2SP signed note
    created_at  TEXT COLLATE "C" NOT NULL
);
CREATE TRIGGER checkpoints_are_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite('checkpoints are', 'they are');

-- API tokens: only a SHA-256 of each token is kept; the token itself is shown once.
-- A revoked or expired token authenticates nobody.
CREATE TABLE tokens (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    hash        TEXT COLLATE "C" NOT NULL UNIQUE,   -- hex SHA-256 of the token
    created_at  TEXT COLLATE "C" NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  TEXT COLLATE "C",               -- NULL: never
    revoked_at  TEXT COLLATE "C",
    revoked_by  TEXT
);

-- Raw evidence by digest, with its parsed summary; one row per (release, component, bytes).
CREATE TABLE evidence (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project     TEXT COLLATE "C" NOT NULL,
    release_id  TEXT COLLATE "C" NOT NULL REFERENCES releases (id),
    component   TEXT COLLATE "C" NOT NULL DEFAULT '',  -- '' means the whole release
    kind        TEXT NOT NULL,
    digest      TEXT COLLATE "C" NOT NULL,      -- sha256 of `raw`
    raw         BYTEA NOT NULL,
    summary     TEXT NOT NULL,                  -- JSON
    source      TEXT NOT NULL,                  -- api | registry
    added_by    TEXT NOT NULL,
    added_at    TEXT COLLATE "C" NOT NULL,
    UNIQUE (release_id, component, digest)
);
CREATE INDEX evidence_by_release ON evidence (project, release_id);
CREATE INDEX evidence_by_digest ON evidence (project, digest);

CREATE TABLE approvals (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project      TEXT COLLATE "C" NOT NULL,
    release_id   TEXT COLLATE "C" NOT NULL REFERENCES releases (id),
    environment  TEXT COLLATE "C" NOT NULL,
    "user"       TEXT NOT NULL,                 -- quoted: USER is a keyword here
    approve      BOOLEAN NOT NULL,              -- false: a rejection
    comment      TEXT,
    at           TEXT COLLATE "C" NOT NULL
);
CREATE INDEX approvals_by_release ON approvals (project, release_id, environment);

CREATE TABLE decisions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project      TEXT COLLATE "C" NOT NULL,
    release_id   TEXT COLLATE "C" NOT NULL REFERENCES releases (id),
    environment  TEXT COLLATE "C" NOT NULL,
    promotion_id BIGINT,
    verdict      TEXT NOT NULL,                 -- allow | pending | deny
    detail       TEXT NOT NULL,                 -- JSON: gates, warnings, wake_at, emergency
    policies     TEXT NOT NULL DEFAULT '[]',    -- JSON [[name, digest]]
    evidence     TEXT NOT NULL DEFAULT '[]',    -- JSON [digest]
    decided_by   TEXT NOT NULL,
    decided_at   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX decisions_by_release ON decisions (project, release_id, environment, id);

-- A stopped line per project ('' environment) or environment; deleted on resume (the
-- ledger keeps both events).
CREATE TABLE stops (
    project      TEXT COLLATE "C" NOT NULL,
    environment  TEXT COLLATE "C" NOT NULL DEFAULT '',
    reason       TEXT NOT NULL,
    stopped_by   TEXT NOT NULL,
    since        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, environment)
);
