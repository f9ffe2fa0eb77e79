//! The live state a ledger replay proves, read in one snapshot; and the grants the
//! upgrade to roles made, recorded in the ledger once.

use deadpool_postgres::GenericClient;

use super::{column, database, one_row, rows};
use crate::ledger::replay::{GrantKey, Snapshot, State, StopState};
use crate::store::{Audit, Result, StoreError};
use crate::stored::{
    LIVE_ENVIRONMENTS, LIVE_GRANTS, LIVE_LEDGER_SIZE, LIVE_STOPS, LIVE_TOKENS, UPGRADE_GRANTOR,
    UPGRADE_GRANTS, ledger_row, live_environment, live_token, upgrade_grant_draft,
};

/// Reads the live state; run it in a repeatable-read transaction, so every query sees
/// the same snapshot.
pub(super) async fn snapshot(client: &impl GenericClient) -> Result<Snapshot> {
    let mut state = State::default();
    for row in rows(client, LIVE_ENVIRONMENTS, &[]).await? {
        live_environment(
            &mut state,
            column(&row, 0)?,
            column(&row, 1)?,
            column(&row, 2)?,
            column(&row, 3)?,
            column(&row, 4)?,
            column(&row, 5)?,
            column(&row, 6)?,
            column(&row, 7)?,
        );
    }
    for row in rows(client, LIVE_STOPS, &[]).await? {
        state.stops.insert(
            (column(&row, 0)?, column(&row, 1)?),
            StopState {
                by: column(&row, 2)?,
                reason: column(&row, 3)?,
            },
        );
    }
    for row in rows(client, LIVE_GRANTS, &[]).await? {
        let key = GrantKey {
            principal: column(&row, 0)?,
            role: column(&row, 1)?,
            project: column(&row, 2)?,
            environment: column(&row, 3)?,
        };
        state.grants.insert(key, column(&row, 4)?);
    }
    for row in rows(client, LIVE_TOKENS, &[]).await? {
        live_token(
            &mut state,
            [column(&row, 0)?, column(&row, 1)?, column(&row, 2)?],
            column(&row, 3)?,
            column(&row, 4)?,
        );
    }
    let ledger_size: i64 = column(&one_row(client, LIVE_LEDGER_SIZE, &[]).await?, 0)?;
    Ok(Snapshot {
        ledger_size: u64::try_from(ledger_size).unwrap_or_default(),
        state,
    })
}

/// Appends an `access.granted` entry for each grant the upgrade to roles made without
/// one: run once, inside the migration that begins proving grants from the ledger (on
/// the migrating session, under the migration lock; no writer runs before migrations
/// end).
pub(super) async fn record_upgrade_grants(
    transaction: &tokio_postgres::Transaction<'_>,
) -> Result<()> {
    const LAST: &str = "SELECT sequence, hash FROM ledger ORDER BY sequence DESC LIMIT 1";
    const INSERT: &str = "INSERT INTO ledger (sequence, hash, entry) VALUES ($1, $2, $3)";
    let audit = Audit::by(UPGRADE_GRANTOR);
    let grants = transaction
        .query(UPGRADE_GRANTS, &[])
        .await
        .map_err(database(UPGRADE_GRANTS))?;
    for grant in &grants {
        let last = transaction
            .query_opt(LAST, &[])
            .await
            .map_err(database(LAST))?
            .map(|row| {
                let sequence: i64 = column(&row, 0)?;
                let sequence = u64::try_from(sequence)
                    .map_err(|_| StoreError::Corrupt(format!("ledger sequence {sequence}")))?;
                Ok::<_, StoreError>((sequence, column(&row, 1)?))
            })
            .transpose()?;
        let columns = [
            column(grant, 0)?,
            column(grant, 1)?,
            column(grant, 2)?,
            column(grant, 3)?,
        ];
        let entry = upgrade_grant_draft(&audit, columns).after(last);
        let sequence = i64::try_from(entry.sequence)
            .map_err(|_| StoreError::Database(format!("ledger sequence {}", entry.sequence)))?;
        let (hash, canonical) = ledger_row(&entry);
        transaction
            .execute(INSERT, &[&sequence, &hash, &canonical])
            .await
            .map_err(database(INSERT))?;
    }
    Ok(())
}
