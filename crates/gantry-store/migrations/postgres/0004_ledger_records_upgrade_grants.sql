-- The ledger now proves who may do what: a replay of it must give every grant in the
-- grants table. The grants the upgrade to roles made (0002) were written here in SQL,
-- with no ledger entry; when the store applies this migration it appends one
-- `access.granted` entry for each (actor `gantry (upgrade to roles)`), in the same
-- transaction. Nothing changes in the schema.
SELECT 1;
