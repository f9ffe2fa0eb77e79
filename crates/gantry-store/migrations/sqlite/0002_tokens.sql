-- API tokens: only a SHA-256 of each token is kept; the token itself is shown once.
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the token
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);
