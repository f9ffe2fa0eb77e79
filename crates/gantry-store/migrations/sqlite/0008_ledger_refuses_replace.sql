-- `INSERT OR REPLACE` (and `REPLACE`) rewrite a row by deleting it first, and SQLite
-- fires no DELETE trigger for that unless recursive_triggers is on: the triggers of 0001
-- let `INSERT OR REPLACE INTO ledger` put a forged entry where a real one was. An insert
-- at a place already taken is now refused before any conflict resolution runs, whatever
-- the statement's conflict clause (REPLACE, IGNORE or an upsert).
CREATE TRIGGER ledger_refuses_replace BEFORE INSERT ON ledger
WHEN EXISTS (SELECT 1 FROM ledger WHERE sequence = NEW.sequence)
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: entries are never replaced');
END;
CREATE TRIGGER checkpoints_refuse_replace BEFORE INSERT ON checkpoints
WHEN EXISTS (SELECT 1 FROM checkpoints WHERE size = NEW.size)
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only');
END;
