//! Tokens and grants: who can call, and what they may do.

use std::collections::BTreeMap;

use gantry_core::{Grant, Principal};
use rusqlite::{OptionalExtension as _, Row, Transaction, params};
use serde_json::json;

use super::{Draft, all_rows, append, database, parse};
use crate::store::{Audit, GrantRecord, Result, StoreError, TokenRecord};
use crate::stored::{
    SERVER_ADMINS_WITH_TOKENS, grant_detail, keep_a_server_admin, scope, scope_columns,
    token_detail,
};
use crate::time;

const TOKEN_COLUMNS: &str =
    "name, principal, created_at, created_by, expires_at, revoked_at, revoked_by";

/// A token's columns, in [`TOKEN_COLUMNS`] order.
type TokenRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn token_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn token_record(
    (name, principal, created_at, created_by, expires_at, revoked_at, revoked_by): TokenRow,
) -> Result<TokenRecord> {
    Ok(TokenRecord {
        principal: parse("token principal", &principal)?,
        name,
        created_at,
        created_by,
        expires_at,
        revoked_at,
        revoked_by,
    })
}

/// The ledger entry of a change to tokens or grants: server-wide, no release.
fn record(
    transaction: &Transaction<'_>,
    audit: &Audit,
    action: &str,
    detail: serde_json::Value,
) -> Result<()> {
    append(
        transaction,
        Draft {
            audit,
            action,
            project: "",
            environment: None,
            release: None,
            digests: BTreeMap::new(),
            reason: None,
            detail,
        },
    )
    .map(drop)
}

pub(super) fn create_token(
    transaction: &Transaction<'_>,
    name: &str,
    principal: &Principal,
    hash: &str,
    expires_at: Option<&str>,
    audit: &Audit,
) -> Result<()> {
    let taken: bool = transaction
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1)",
            [name],
            |row| row.get(0),
        )
        .map_err(database)?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "a token named {name:?} exists already"
        )));
    }
    transaction
        .execute(
            "INSERT INTO tokens (name, principal, hash, created_at, created_by, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                principal.to_string(),
                hash,
                time::now(),
                audit.actor,
                expires_at
            ],
        )
        .map_err(database)?;
    record(
        transaction,
        audit,
        "token.created",
        token_detail(name, principal, hash, expires_at),
    )
}

pub(super) fn token_by_hash(
    transaction: &Transaction<'_>,
    hash: &str,
) -> Result<Option<TokenRecord>> {
    transaction
        .query_row(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > ?2)"
            ),
            [hash, &time::now()],
            token_row,
        )
        .optional()
        .map_err(database)?
        .map(token_record)
        .transpose()
}

pub(super) fn revoke_token(transaction: &Transaction<'_>, name: &str, audit: &Audit) -> Result<()> {
    let revoked: Option<Option<String>> = transaction
        .query_row(
            "SELECT revoked_at FROM tokens WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
        .optional()
        .map_err(database)?;
    match revoked {
        None => return Err(StoreError::NotFound(format!("token {name:?}"))),
        Some(Some(at)) => {
            return Err(StoreError::Conflict(format!(
                "token {name:?} was revoked at {at}"
            )));
        }
        Some(None) => {}
    }
    let before = server_admins(transaction)?;
    transaction
        .execute(
            "UPDATE tokens SET revoked_at = ?2, revoked_by = ?3 WHERE name = ?1",
            params![name, time::now(), audit.actor],
        )
        .map_err(database)?;
    keep_a_server_admin(
        &format!("revoking token {name:?}"),
        before,
        server_admins(transaction)?,
    )?;
    record(transaction, audit, "token.revoked", json!({"name": name}))
}

/// Principals with admin over the server and a working token, as this transaction sees
/// them: the check and the change it guards are one transaction (`BEGIN IMMEDIATE`, so
/// writers run one at a time, in this process or another).
fn server_admins(transaction: &Transaction<'_>) -> Result<i64> {
    transaction
        .query_row(SERVER_ADMINS_WITH_TOKENS, [time::now()], |row| row.get(0))
        .map_err(database)
}

pub(super) fn tokens(transaction: &Transaction<'_>) -> Result<Vec<TokenRecord>> {
    all_rows(
        transaction,
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY name"),
        [],
        token_row,
    )?
    .into_iter()
    .map(token_record)
    .collect()
}

pub(super) fn grant(
    transaction: &Transaction<'_>,
    grant: &Grant,
    audit: &Audit,
) -> Result<(GrantRecord, bool)> {
    let (project, environment) = scope_columns(&grant.scope);
    let principal = grant.principal.to_string();
    let inserted = transaction
        .execute(
            "INSERT INTO grants (principal, role, project, environment, granted_by, granted_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![
                principal,
                grant.role.as_str(),
                project,
                environment,
                audit.actor,
                time::now()
            ],
        )
        .map_err(database)?;
    if inserted > 0 {
        record(transaction, audit, "access.granted", grant_detail(grant))?;
    }
    let (granted_by, granted_at) = transaction
        .query_row(
            "SELECT granted_by, granted_at FROM grants \
             WHERE principal = ?1 AND role = ?2 AND project = ?3 AND environment = ?4",
            params![principal, grant.role.as_str(), project, environment],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(database)?;
    let kept = GrantRecord {
        grant: grant.clone(),
        granted_by,
        granted_at,
    };
    Ok((kept, inserted > 0))
}

pub(super) fn revoke_grant(
    transaction: &Transaction<'_>,
    grant: &Grant,
    audit: &Audit,
) -> Result<()> {
    let (project, environment) = scope_columns(&grant.scope);
    let before = server_admins(transaction)?;
    let deleted = transaction
        .execute(
            "DELETE FROM grants WHERE principal = ?1 AND role = ?2 AND project = ?3 AND environment = ?4",
            params![grant.principal.to_string(), grant.role.as_str(), project, environment],
        )
        .map_err(database)?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!(
            "a grant of {} to {} over {}",
            grant.role, grant.principal, grant.scope
        )));
    }
    keep_a_server_admin(
        &format!(
            "revoking {}'s {} over {}",
            grant.principal, grant.role, grant.scope
        ),
        before,
        server_admins(transaction)?,
    )?;
    record(transaction, audit, "access.revoked", grant_detail(grant))
}

pub(super) fn grants(
    transaction: &Transaction<'_>,
    principal: Option<&Principal>,
) -> Result<Vec<GrantRecord>> {
    let rows = all_rows(
        transaction,
        "SELECT principal, role, project, environment, granted_by, granted_at FROM grants \
         WHERE ?1 IS NULL OR principal = ?1 ORDER BY principal, project, environment, role",
        [principal.map(ToString::to_string)],
        |row| {
            Ok([
                row.get::<_, String>(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ])
        },
    )?;
    rows.into_iter()
        .map(
            |[
                principal,
                role,
                project,
                environment,
                granted_by,
                granted_at,
            ]| {
                let scope = scope(&project, &environment)?;
                Ok(GrantRecord {
                    grant: Grant {
                        principal: parse("grant principal", &principal)?,
                        role: parse("grant role", &role)?,
                        scope,
                    },
                    granted_by,
                    granted_at,
                })
            },
        )
        .collect()
}
