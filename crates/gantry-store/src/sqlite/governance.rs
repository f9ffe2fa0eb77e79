//! Evidence, approvals, decisions and stopped lines on `SQLite`: each change with its
//! ledger entry in the caller's transaction.

use std::collections::BTreeMap;

use gantry_core::{Digest, Name, ReleaseId, Verdict};
use rusqlite::{OptionalExtension as _, Row, Transaction, params};
use serde_json::json;

use super::{all_rows, append, database};
use crate::store::{
    ApprovalRecord, Audit, DecisionRecord, EvidenceRecord, NewApproval, NewDecision, NewEvidence,
    NewRefusal, Result, StopRecord, StoreError,
};
use crate::stored::{Draft, parse, release_id};
use crate::time;

const EVIDENCE_COLUMNS: &str = "id, project, release_id, component, kind, digest, length(raw), summary, source, added_by, added_at";

fn evidence_row(row: &Row<'_>) -> rusqlite::Result<(i64, [String; 10])> {
    Ok((
        row.get(0)?,
        [
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get::<_, i64>(6)?.to_string(),
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
        ],
    ))
}

fn evidence_record((id, values): (i64, [String; 10])) -> Result<EvidenceRecord> {
    let [
        project,
        release,
        component,
        kind,
        digest,
        size,
        summary,
        source,
        added_by,
        added_at,
    ] = values;
    Ok(EvidenceRecord {
        id,
        project: parse("project", &project)?,
        release: release_id(&release)?,
        component: if component.is_empty() {
            None
        } else {
            Some(parse("component", &component)?)
        },
        kind,
        digest: parse("evidence digest", &digest)?,
        size: parse("evidence size", &size)?,
        summary,
        source,
        added_by,
        added_at,
    })
}

fn release_exists(
    transaction: &Transaction<'_>,
    project: &Name,
    release: &ReleaseId,
) -> Result<()> {
    let exists: bool = transaction
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM releases WHERE id = ?1 AND project = ?2)",
            [release.digest().as_str(), project.as_str()],
            |row| row.get(0),
        )
        .map_err(database)?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!(
            "release {release} of project {project}"
        )))
    }
}

pub(super) fn add_evidence(
    transaction: &Transaction<'_>,
    evidence: &NewEvidence,
    audit: &Audit,
) -> Result<(EvidenceRecord, bool)> {
    release_exists(transaction, &evidence.project, &evidence.release)?;
    let component = evidence.component.as_ref().map_or("", Name::as_str);
    let existing: Option<(i64, [String; 10])> = transaction
        .query_row(
            &format!(
                "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE release_id = ?1 AND component = ?2 AND digest = ?3"
            ),
            params![evidence.release.digest().as_str(), component, evidence.digest.as_str()],
            evidence_row,
        )
        .optional()
        .map_err(database)?;
    if let Some(row) = existing {
        return Ok((evidence_record(row)?, false));
    }
    transaction
        .execute(
            "INSERT INTO evidence (project, release_id, component, kind, digest, raw, summary, source, added_by, added_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                evidence.project.as_str(),
                evidence.release.digest().as_str(),
                component,
                evidence.kind,
                evidence.digest.as_str(),
                evidence.raw,
                evidence.summary,
                evidence.source,
                audit.actor,
                time::now(),
            ],
        )
        .map_err(database)?;
    let id = transaction.last_insert_rowid();
    append(
        transaction,
        Draft {
            audit,
            action: "evidence.added",
            project: evidence.project.as_str(),
            environment: None,
            release: Some(&evidence.release),
            digests: BTreeMap::from([("evidence".to_owned(), evidence.digest.to_string())]),
            reason: None,
            detail: json!({
                "kind": evidence.kind,
                "component": evidence.component.as_ref().map(Name::as_str),
                "source": evidence.source,
                "size": evidence.raw.len(),
            }),
        },
    )?;
    let row = transaction
        .query_row(
            &format!("SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id = ?1"),
            [id],
            evidence_row,
        )
        .map_err(database)?;
    Ok((evidence_record(row)?, true))
}

pub(super) fn evidence(
    transaction: &Transaction<'_>,
    project: &Name,
    release: &ReleaseId,
) -> Result<Vec<EvidenceRecord>> {
    let rows = all_rows(
        transaction,
        &format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE project = ?1 AND release_id = ?2 ORDER BY id"
        ),
        [project.as_str(), release.digest().as_str()],
        evidence_row,
    )?;
    rows.into_iter().map(evidence_record).collect()
}

const APPROVAL_COLUMNS: &str = "id, project, release_id, environment, user, approve, comment, at";

/// id, project, release, environment, user, approve, comment, at.
type ApprovalRow = (
    i64,
    String,
    String,
    String,
    String,
    bool,
    Option<String>,
    String,
);

fn approval_row(row: &Row<'_>) -> rusqlite::Result<ApprovalRow> {
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
}

fn approval_record(
    (id, project, release, environment, user, approve, comment, at): ApprovalRow,
) -> Result<ApprovalRecord> {
    Ok(ApprovalRecord {
        id,
        project: parse("project", &project)?,
        release: release_id(&release)?,
        environment: parse("environment", &environment)?,
        user,
        approve,
        comment,
        at,
    })
}

pub(super) fn add_approval(
    transaction: &Transaction<'_>,
    approval: &NewApproval,
    audit: &Audit,
) -> Result<ApprovalRecord> {
    release_exists(transaction, &approval.project, &approval.release)?;
    transaction
        .execute(
            "INSERT INTO approvals (project, release_id, environment, user, approve, comment, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                approval.project.as_str(),
                approval.release.digest().as_str(),
                approval.environment.as_str(),
                audit.actor,
                approval.approve,
                approval.comment,
                time::now(),
            ],
        )
        .map_err(database)?;
    let id = transaction.last_insert_rowid();
    append(
        transaction,
        Draft {
            audit,
            action: if approval.approve {
                "approval.approved"
            } else {
                "approval.rejected"
            },
            project: approval.project.as_str(),
            environment: Some(approval.environment.as_str()),
            release: Some(&approval.release),
            digests: BTreeMap::new(),
            reason: approval.comment.clone(),
            detail: json!({"approval": id}),
        },
    )?;
    transaction
        .query_row(
            &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
            [id],
            approval_row,
        )
        .map_err(database)
        .and_then(approval_record)
}

pub(super) fn approvals(
    transaction: &Transaction<'_>,
    project: &Name,
    release: &ReleaseId,
    environment: &Name,
) -> Result<Vec<ApprovalRecord>> {
    let rows = all_rows(
        transaction,
        &format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE project = ?1 AND release_id = ?2 AND environment = ?3 ORDER BY id"
        ),
        [
            project.as_str(),
            release.digest().as_str(),
            environment.as_str(),
        ],
        approval_row,
    )?;
    rows.into_iter().map(approval_record).collect()
}

const DECISION_COLUMNS: &str = "id, project, release_id, environment, promotion_id, verdict, detail, policies, evidence, decided_by, decided_at";

type DecisionRow = (i64, [String; 3], Option<i64>, [String; 6]);

fn decision_row(row: &Row<'_>) -> rusqlite::Result<DecisionRow> {
    Ok((
        row.get(0)?,
        [row.get(1)?, row.get(2)?, row.get(3)?],
        row.get(4)?,
        [
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
        ],
    ))
}

fn decision_record(
    (id, [project, release, environment], promotion, rest): DecisionRow,
) -> Result<DecisionRecord> {
    let [verdict, detail, policies, evidence, decided_by, decided_at] = rest;
    let policies: Vec<(String, String)> = serde_json::from_str(&policies)
        .map_err(|e| StoreError::Corrupt(format!("decision {id} policies: {e}")))?;
    let evidence: Vec<String> = serde_json::from_str(&evidence)
        .map_err(|e| StoreError::Corrupt(format!("decision {id} evidence: {e}")))?;
    Ok(DecisionRecord {
        id,
        project: parse("project", &project)?,
        release: release_id(&release)?,
        environment: parse("environment", &environment)?,
        promotion,
        verdict: parse::<Verdict>("verdict", &verdict)?,
        detail,
        policies: policies
            .into_iter()
            .map(|(name, digest)| Ok((name, parse::<Digest>("policy digest", &digest)?)))
            .collect::<Result<_>>()?,
        evidence: evidence
            .iter()
            .map(|d| parse::<Digest>("evidence digest", d))
            .collect::<Result<_>>()?,
        decided_by,
        decided_at,
    })
}

pub(super) fn record_decision(
    transaction: &Transaction<'_>,
    decision: &NewDecision,
    audit: &Audit,
) -> Result<DecisionRecord> {
    release_exists(transaction, &decision.project, &decision.release)?;
    let policies: Vec<(&str, &str)> = decision
        .policies
        .iter()
        .map(|(name, digest)| (name.as_str(), digest.as_str()))
        .collect();
    let evidence: Vec<&str> = decision.evidence.iter().map(Digest::as_str).collect();
    let detail: serde_json::Value = serde_json::from_str(&decision.detail)
        .map_err(|e| StoreError::Conflict(format!("decision detail is not JSON: {e}")))?;
    transaction
        .execute(
            "INSERT INTO decisions (project, release_id, environment, promotion_id, verdict, detail, policies, evidence, decided_by, decided_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                decision.project.as_str(),
                decision.release.digest().as_str(),
                decision.environment.as_str(),
                decision.promotion,
                decision.verdict.as_str(),
                decision.detail,
                serde_json::to_string(&policies).expect("strings serialize"),
                serde_json::to_string(&evidence).expect("strings serialize"),
                audit.actor,
                time::now(),
            ],
        )
        .map_err(database)?;
    let id = transaction.last_insert_rowid();
    let mut digests: BTreeMap<String, String> = decision
        .policies
        .iter()
        .map(|(name, digest)| (format!("policy:{name}"), digest.to_string()))
        .collect();
    for (index, digest) in decision.evidence.iter().enumerate() {
        digests.insert(format!("evidence:{index}"), digest.to_string());
    }
    append(
        transaction,
        Draft {
            audit,
            action: &format!("decision.{}", decision.verdict),
            project: decision.project.as_str(),
            environment: Some(decision.environment.as_str()),
            release: Some(&decision.release),
            digests,
            reason: None,
            detail: json!({"decision": id, "promotion": decision.promotion, "gates": detail.get("gates")}),
        },
    )?;
    transaction
        .query_row(
            &format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = ?1"),
            [id],
            decision_row,
        )
        .map_err(database)
        .and_then(decision_record)
}

pub(super) fn decisions(
    transaction: &Transaction<'_>,
    project: &Name,
    release: &ReleaseId,
    environment: Option<&Name>,
    limit: usize,
) -> Result<Vec<DecisionRecord>> {
    let rows = all_rows(
        transaction,
        &format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE project = ?1 AND release_id = ?2 AND (?3 IS NULL OR environment = ?3) ORDER BY id DESC LIMIT ?4"
        ),
        params![
            project.as_str(),
            release.digest().as_str(),
            environment.map(Name::as_str),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        decision_row,
    )?;
    rows.into_iter().map(decision_record).collect()
}

pub(super) fn record_refusal(
    transaction: &Transaction<'_>,
    refusal: &NewRefusal,
    audit: &Audit,
) -> Result<()> {
    let action = format!("{}.refused", refusal.what);
    append(
        transaction,
        Draft {
            audit,
            action: &action,
            project: refusal.project.as_str(),
            environment: None,
            release: refusal.release.as_ref(),
            digests: BTreeMap::new(),
            reason: Some(refusal.reason.clone()),
            detail: refusal.detail.clone(),
        },
    )
    .map(drop)
}

pub(super) fn set_stop(
    transaction: &Transaction<'_>,
    project: &Name,
    environment: Option<&Name>,
    stop: bool,
    audit: &Audit,
) -> Result<()> {
    let scope = environment.map_or("", Name::as_str);
    let place = environment.map_or_else(
        || format!("project {project}"),
        |e| format!("environment {e}"),
    );
    let stopped: bool = transaction
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM stops WHERE project = ?1 AND environment = ?2)",
            [project.as_str(), scope],
            |row| row.get(0),
        )
        .map_err(database)?;
    if stopped == stop {
        return Err(StoreError::Conflict(format!(
            "the line of {place} is {} stopped",
            if stop { "already" } else { "not" }
        )));
    }
    if stop {
        let reason = audit
            .reason
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| StoreError::Conflict("stopping the line needs a reason".to_owned()))?;
        transaction
            .execute(
                "INSERT INTO stops (project, environment, reason, stopped_by, since) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![project.as_str(), scope, reason, audit.actor, time::now()],
            )
            .map_err(database)?;
    } else {
        transaction
            .execute(
                "DELETE FROM stops WHERE project = ?1 AND environment = ?2",
                [project.as_str(), scope],
            )
            .map_err(database)?;
    }
    append(
        transaction,
        Draft {
            audit,
            action: if stop { "line.stopped" } else { "line.resumed" },
            project: project.as_str(),
            environment: environment.map(Name::as_str),
            release: None,
            digests: BTreeMap::new(),
            reason: None,
            detail: serde_json::Value::Null,
        },
    )?;
    Ok(())
}

pub(super) fn stops(transaction: &Transaction<'_>, project: &Name) -> Result<Vec<StopRecord>> {
    let rows = all_rows(
        transaction,
        "SELECT environment, reason, stopped_by, since FROM stops WHERE project = ?1 ORDER BY environment",
        [project.as_str()],
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        },
    )?;
    rows.into_iter()
        .map(|(environment, reason, by, since)| {
            Ok(StopRecord {
                project: project.clone(),
                environment: if environment.is_empty() {
                    None
                } else {
                    Some(parse("environment", &environment)?)
                },
                reason,
                by,
                since,
            })
        })
        .collect()
}
