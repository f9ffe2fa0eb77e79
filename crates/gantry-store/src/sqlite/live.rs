//! The live state a ledger replay proves, read in one transaction; and the grants the
//! upgrade to roles made, recorded in the ledger once.

use rusqlite::Transaction;

use super::{Draft, all_rows, append, database};
use crate::ledger::replay::{GrantKey, Snapshot, State, StopState};
use crate::store::{Audit, Result};
use crate::stored::{
    LIVE_ENVIRONMENTS, LIVE_GRANTS, LIVE_LEDGER_SIZE, LIVE_STOPS, LIVE_TOKENS, UPGRADE_GRANTOR,
    UPGRADE_GRANTS, live_environment, live_token, upgrade_grant_draft,
};

pub(super) fn snapshot(transaction: &Transaction<'_>) -> Result<Snapshot> {
    let mut state = State::default();
    let environments = all_rows(transaction, LIVE_ENVIRONMENTS, [], |row| {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
        ))
    })?;
    for (project, name, release, version, moved_by, held, hold_by, hold_reason) in environments {
        live_environment(
            &mut state,
            project,
            name,
            release,
            version,
            moved_by,
            held,
            hold_by,
            hold_reason,
        );
    }
    for (project, environment, by, reason) in all_rows(transaction, LIVE_STOPS, [], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    })? {
        state
            .stops
            .insert((project, environment), StopState { by, reason });
    }
    for (principal, role, project, environment, granted_by) in
        all_rows(transaction, LIVE_GRANTS, [], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?
    {
        let key = GrantKey {
            principal,
            role,
            project,
            environment,
        };
        state.grants.insert(key, granted_by);
    }
    for (name, principal, hash, expires_at, revoked_by) in
        all_rows(transaction, LIVE_TOKENS, [], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?
    {
        live_token(&mut state, [name, principal, hash], expires_at, revoked_by);
    }
    let ledger_size: i64 = transaction
        .query_row(LIVE_LEDGER_SIZE, [], |row| row.get(0))
        .map_err(database)?;
    Ok(Snapshot {
        ledger_size: u64::try_from(ledger_size).unwrap_or_default(),
        state,
    })
}

/// Appends an `access.granted` entry for each grant the upgrade to roles made without
/// one: run once, by the migration that begins proving grants from the ledger.
pub(super) fn record_upgrade_grants(transaction: &Transaction<'_>) -> Result<()> {
    let audit = Audit::by(UPGRADE_GRANTOR);
    let grants = all_rows(transaction, UPGRADE_GRANTS, [], |row| {
        Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?])
    })?;
    for grant in grants {
        let draft: Draft<'_> = upgrade_grant_draft(&audit, grant);
        append(transaction, draft)?;
    }
    Ok(())
}
