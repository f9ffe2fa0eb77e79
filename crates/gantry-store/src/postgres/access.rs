//! Tokens and grants on `PostgreSQL`: each change with its ledger entry in the caller's
//! write transaction.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use gantry_core::{Grant, Principal};
use serde_json::json;
use tokio_postgres::Row;

use super::{append, column, execute, exists, one_row, optional_row, rows};
use crate::store::{Audit, GrantRecord, Result, StoreError, TokenRecord};
use crate::stored::{
    Draft, SERVER_ADMINS_WITH_TOKENS, grant_detail, keep_a_server_admin, parse, scope,
    scope_columns, token_detail,
};
use crate::time;

const TOKEN_COLUMNS: &str =
    "name, principal, created_at, created_by, expires_at, revoked_at, revoked_by";

fn token_record(row: &Row) -> Result<TokenRecord> {
    Ok(TokenRecord {
        name: column(row, "name")?,
        principal: parse("token principal", column(row, "principal")?)?,
        created_at: column(row, "created_at")?,
        created_by: column(row, "created_by")?,
        expires_at: column(row, "expires_at")?,
        revoked_at: column(row, "revoked_at")?,
        revoked_by: column(row, "revoked_by")?,
    })
}

/// The ledger entry of a change to tokens or grants: server-wide, no release.
async fn record(
    client: &impl GenericClient,
    audit: &Audit,
    action: &str,
    detail: serde_json::Value,
) -> Result<()> {
    append(
        client,
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
    .await
    .map(drop)
}

pub(super) async fn create_token(
    client: &impl GenericClient,
    name: &str,
    principal: &Principal,
    hash: &str,
    expires_at: Option<&str>,
    audit: &Audit,
) -> Result<()> {
    if exists(
        client,
        "SELECT EXISTS (SELECT 1 FROM tokens WHERE name = $1)",
        &[&name],
    )
    .await?
    {
        return Err(StoreError::Conflict(format!(
            "a token named {name:?} exists already"
        )));
    }
    execute(
        client,
        "INSERT INTO tokens (name, principal, hash, created_at, created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &name,
            &principal.to_string(),
            &hash,
            &time::now(),
            &audit.actor,
            &expires_at,
        ],
    )
    .await?;
    record(
        client,
        audit,
        "token.created",
        token_detail(name, principal, hash, expires_at),
    )
    .await
}

pub(super) async fn token_by_hash(
    client: &impl GenericClient,
    hash: &str,
) -> Result<Option<TokenRecord>> {
    optional_row(
        client,
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        ),
        &[&hash, &time::now()],
    )
    .await?
    .as_ref()
    .map(token_record)
    .transpose()
}

pub(super) async fn revoke_token(
    client: &impl GenericClient,
    name: &str,
    audit: &Audit,
) -> Result<()> {
    let revoked: Option<Option<String>> = optional_row(
        client,
        "SELECT revoked_at FROM tokens WHERE name = $1",
        &[&name],
    )
    .await?
    .map(|row| column(&row, "revoked_at"))
    .transpose()?;
    match revoked {
        None => return Err(StoreError::NotFound(format!("token {name:?}"))),
        Some(Some(at)) => {
            return Err(StoreError::Conflict(format!(
                "token {name:?} was revoked at {at}"
            )));
        }
        Some(None) => {}
    }
    let before = server_admins(client).await?;
    execute(
        client,
        "UPDATE tokens SET revoked_at = $2, revoked_by = $3 WHERE name = $1",
        &[&name, &time::now(), &audit.actor],
    )
    .await?;
    keep_a_server_admin(
        &format!("revoking token {name:?}"),
        before,
        server_admins(client).await?,
    )?;
    record(client, audit, "token.revoked", json!({"name": name})).await
}

/// Principals with admin over the server and a working token, as the caller's write
/// transaction sees them: writers hold the one advisory lock, so the check and the
/// change it guards cannot interleave with another replica's.
async fn server_admins(client: &impl GenericClient) -> Result<i64> {
    column(
        &one_row(client, SERVER_ADMINS_WITH_TOKENS, &[&time::now()]).await?,
        0,
    )
}

pub(super) async fn tokens(client: &impl GenericClient) -> Result<Vec<TokenRecord>> {
    rows(
        client,
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY name"),
        &[],
    )
    .await?
    .iter()
    .map(token_record)
    .collect()
}

pub(super) async fn grant(
    client: &impl GenericClient,
    grant: &Grant,
    audit: &Audit,
) -> Result<(GrantRecord, bool)> {
    let (project, environment) = scope_columns(&grant.scope);
    let principal = grant.principal.to_string();
    let inserted = execute(
        client,
        "INSERT INTO grants (principal, role, project, environment, granted_by, granted_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        &[
            &principal,
            &grant.role.as_str(),
            &project,
            &environment,
            &audit.actor,
            &time::now(),
        ],
    )
    .await?;
    if inserted > 0 {
        record(client, audit, "access.granted", grant_detail(grant)).await?;
    }
    let row = one_row(
        client,
        "SELECT granted_by, granted_at FROM grants \
         WHERE principal = $1 AND role = $2 AND project = $3 AND environment = $4",
        &[&principal, &grant.role.as_str(), &project, &environment],
    )
    .await?;
    let kept = GrantRecord {
        grant: grant.clone(),
        granted_by: column(&row, "granted_by")?,
        granted_at: column(&row, "granted_at")?,
    };
    Ok((kept, inserted > 0))
}

pub(super) async fn revoke_grant(
    client: &impl GenericClient,
    grant: &Grant,
    audit: &Audit,
) -> Result<()> {
    let (project, environment) = scope_columns(&grant.scope);
    let before = server_admins(client).await?;
    let deleted = execute(
        client,
        "DELETE FROM grants WHERE principal = $1 AND role = $2 AND project = $3 AND environment = $4",
        &[
            &grant.principal.to_string(),
            &grant.role.as_str(),
            &project,
            &environment,
        ],
    )
    .await?;
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
        server_admins(client).await?,
    )?;
    record(client, audit, "access.revoked", grant_detail(grant)).await
}

pub(super) async fn grants(
    client: &impl GenericClient,
    principal: Option<&Principal>,
) -> Result<Vec<GrantRecord>> {
    let principal = principal.map(ToString::to_string);
    rows(
        client,
        "SELECT principal, role, project, environment, granted_by, granted_at FROM grants \
         WHERE $1::text IS NULL OR principal = $1 ORDER BY principal, project, environment, role",
        &[&principal],
    )
    .await?
    .iter()
    .map(|row| {
        let scope = scope(column(row, "project")?, column(row, "environment")?)?;
        Ok(GrantRecord {
            grant: Grant {
                principal: parse("grant principal", column(row, "principal")?)?,
                role: parse("grant role", column(row, "role")?)?,
                scope,
            },
            granted_by: column(row, "granted_by")?,
            granted_at: column(row, "granted_at")?,
        })
    })
    .collect()
}
