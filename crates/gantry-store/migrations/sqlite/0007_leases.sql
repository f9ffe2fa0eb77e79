-- Leases: a running promotion belongs to the replica running it until its lease runs
-- out; a replica renews its leases while it works, and any replica puts a promotion
-- whose lease ran out (its replica died) back in line.
ALTER TABLE promotions ADD COLUMN runner TEXT;
ALTER TABLE promotions ADD COLUMN lease_until TEXT;   -- RFC 3339 UTC with milliseconds
