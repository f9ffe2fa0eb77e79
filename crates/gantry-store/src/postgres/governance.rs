//! Evidence, approvals, decisions and stopped lines on `PostgreSQL`: each change with its
//! ledger entry in the caller's write transaction.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use gantry_core::{Digest, Name, ReleaseId, Verdict};
use serde_json::json;
use tokio_postgres::Row;

use super::{append, column, execute, exists, limit, one_row, optional_row, rows};
use crate::store::{
    ApprovalRecord, Audit, DecisionRecord, EvidenceRecord, NewApproval, NewDecision, NewEvidence,
    NewRefusal, Result, StopRecord, StoreError,
};
use crate::stored::{Draft, parse, release_id};
use crate::time;

/// `''` stands for "none" in the component of evidence and the environment of a stop,
/// so that they can be part of a key.
fn none_if_empty(what: &str, text: &str) -> Result<Option<Name>> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse(what, text).map(Some)
    }
}

const EVIDENCE_COLUMNS: &str = "id, project, release_id, component, kind, digest, \
     octet_length(raw)::bigint AS size, summary, source, added_by, added_at";

fn evidence_record(row: &Row) -> Result<EvidenceRecord> {
    let size: i64 = column(row, "size")?;
    Ok(EvidenceRecord {
        id: column(row, "id")?,
        project: parse("project", column(row, "project")?)?,
        release: release_id(column(row, "release_id")?)?,
        component: none_if_empty("component", column(row, "component")?)?,
        kind: column(row, "kind")?,
        digest: parse("evidence digest", column(row, "digest")?)?,
        size: u64::try_from(size)
            .map_err(|_| StoreError::Corrupt(format!("evidence size {size}")))?,
        summary: column(row, "summary")?,
        source: column(row, "source")?,
        added_by: column(row, "added_by")?,
        added_at: column(row, "added_at")?,
    })
}

async fn release_exists(
    client: &impl GenericClient,
    project: &Name,
    release: &ReleaseId,
) -> Result<()> {
    if exists(
        client,
        "SELECT EXISTS (SELECT 1 FROM releases WHERE id = $1 AND project = $2)",
        &[&release.digest().as_str(), &project.as_str()],
    )
    .await?
    {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!(
            "release {release} of project {project}"
        )))
    }
}

pub(super) async fn add_evidence(
    client: &impl GenericClient,
    evidence: &NewEvidence,
    audit: &Audit,
) -> Result<(EvidenceRecord, bool)> {
    release_exists(client, &evidence.project, &evidence.release).await?;
    let component = evidence.component.as_ref().map_or("", Name::as_str);
    let existing = optional_row(
        client,
        &format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence \
             WHERE release_id = $1 AND component = $2 AND digest = $3"
        ),
        &[
            &evidence.release.digest().as_str(),
            &component,
            &evidence.digest.as_str(),
        ],
    )
    .await?;
    if let Some(row) = existing {
        return Ok((evidence_record(&row)?, false));
    }
    let row = one_row(
        client,
        "INSERT INTO evidence (project, release_id, component, kind, digest, raw, summary, source, added_by, added_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        &[
            &evidence.project.as_str(),
            &evidence.release.digest().as_str(),
            &component,
            &evidence.kind,
            &evidence.digest.as_str(),
            &evidence.raw,
            &evidence.summary,
            &evidence.source,
            &audit.actor,
            &time::now(),
        ],
    )
    .await?;
    let id: i64 = column(&row, "id")?;
    append(
        client,
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
    )
    .await?;
    let row = one_row(
        client,
        &format!("SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id = $1"),
        &[&id],
    )
    .await?;
    Ok((evidence_record(&row)?, true))
}

pub(super) async fn evidence(
    client: &impl GenericClient,
    project: &Name,
    release: &ReleaseId,
) -> Result<Vec<EvidenceRecord>> {
    rows(
        client,
        &format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE project = $1 AND release_id = $2 ORDER BY id"
        ),
        &[&project.as_str(), &release.digest().as_str()],
    )
    .await?
    .iter()
    .map(evidence_record)
    .collect()
}

const APPROVAL_COLUMNS: &str =
    r#"id, project, release_id, environment, "user", approve, comment, at"#;

fn approval_record(row: &Row) -> Result<ApprovalRecord> {
    Ok(ApprovalRecord {
        id: column(row, "id")?,
        project: parse("project", column(row, "project")?)?,
        release: release_id(column(row, "release_id")?)?,
        environment: parse("environment", column(row, "environment")?)?,
        user: column(row, "user")?,
        approve: column(row, "approve")?,
        comment: column(row, "comment")?,
        at: column(row, "at")?,
    })
}

pub(super) async fn add_approval(
    client: &impl GenericClient,
    approval: &NewApproval,
    audit: &Audit,
) -> Result<ApprovalRecord> {
    release_exists(client, &approval.project, &approval.release).await?;
    let row = one_row(
        client,
        r#"INSERT INTO approvals (project, release_id, environment, "user", approve, comment, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"#,
        &[
            &approval.project.as_str(),
            &approval.release.digest().as_str(),
            &approval.environment.as_str(),
            &audit.actor,
            &approval.approve,
            &approval.comment,
            &time::now(),
        ],
    )
    .await?;
    let id: i64 = column(&row, "id")?;
    append(
        client,
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
    )
    .await?;
    approval_record(
        &one_row(
            client,
            &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1"),
            &[&id],
        )
        .await?,
    )
}

pub(super) async fn approvals(
    client: &impl GenericClient,
    project: &Name,
    release: &ReleaseId,
    environment: &Name,
) -> Result<Vec<ApprovalRecord>> {
    rows(
        client,
        &format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals \
             WHERE project = $1 AND release_id = $2 AND environment = $3 ORDER BY id"
        ),
        &[
            &project.as_str(),
            &release.digest().as_str(),
            &environment.as_str(),
        ],
    )
    .await?
    .iter()
    .map(approval_record)
    .collect()
}

const DECISION_COLUMNS: &str = "id, project, release_id, environment, promotion_id, verdict, detail, policies, evidence, decided_by, decided_at";

fn decision_record(row: &Row) -> Result<DecisionRecord> {
    let id: i64 = column(row, "id")?;
    let policies: Vec<(String, String)> = serde_json::from_str(column(row, "policies")?)
        .map_err(|e| StoreError::Corrupt(format!("decision {id} policies: {e}")))?;
    let evidence: Vec<String> = serde_json::from_str(column(row, "evidence")?)
        .map_err(|e| StoreError::Corrupt(format!("decision {id} evidence: {e}")))?;
    Ok(DecisionRecord {
        id,
        project: parse("project", column(row, "project")?)?,
        release: release_id(column(row, "release_id")?)?,
        environment: parse("environment", column(row, "environment")?)?,
        promotion: column(row, "promotion_id")?,
        verdict: parse::<Verdict>("verdict", column(row, "verdict")?)?,
        detail: column(row, "detail")?,
        policies: policies
            .into_iter()
            .map(|(name, digest)| Ok((name, parse::<Digest>("policy digest", &digest)?)))
            .collect::<Result<_>>()?,
        evidence: evidence
            .iter()
            .map(|d| parse::<Digest>("evidence digest", d))
            .collect::<Result<_>>()?,
        decided_by: column(row, "decided_by")?,
        decided_at: column(row, "decided_at")?,
    })
}

pub(super) async fn record_decision(
    client: &impl GenericClient,
    decision: &NewDecision,
    audit: &Audit,
) -> Result<DecisionRecord> {
    release_exists(client, &decision.project, &decision.release).await?;
    let policies: Vec<(&str, &str)> = decision
        .policies
        .iter()
        .map(|(name, digest)| (name.as_str(), digest.as_str()))
        .collect();
    let evidence: Vec<&str> = decision.evidence.iter().map(Digest::as_str).collect();
    let detail: serde_json::Value = serde_json::from_str(&decision.detail)
        .map_err(|e| StoreError::Conflict(format!("decision detail is not JSON: {e}")))?;
    let row = one_row(
        client,
        "INSERT INTO decisions (project, release_id, environment, promotion_id, verdict, detail, policies, evidence, decided_by, decided_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        &[
            &decision.project.as_str(),
            &decision.release.digest().as_str(),
            &decision.environment.as_str(),
            &decision.promotion,
            &decision.verdict.as_str(),
            &decision.detail,
            &serde_json::to_string(&policies).expect("strings serialize"),
            &serde_json::to_string(&evidence).expect("strings serialize"),
            &audit.actor,
            &time::now(),
        ],
    )
    .await?;
    let id: i64 = column(&row, "id")?;
    let mut digests: BTreeMap<String, String> = decision
        .policies
        .iter()
        .map(|(name, digest)| (format!("policy:{name}"), digest.to_string()))
        .collect();
    for (index, digest) in decision.evidence.iter().enumerate() {
        digests.insert(format!("evidence:{index}"), digest.to_string());
    }
    append(
        client,
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
    )
    .await?;
    decision_record(
        &one_row(
            client,
            &format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = $1"),
            &[&id],
        )
        .await?,
    )
}

pub(super) async fn decisions(
    client: &impl GenericClient,
    project: &Name,
    release: &ReleaseId,
    environment: Option<&Name>,
    count: usize,
) -> Result<Vec<DecisionRecord>> {
    rows(
        client,
        &format!(
            "SELECT {DECISION_COLUMNS} FROM decisions \
             WHERE project = $1 AND release_id = $2 AND ($3::text IS NULL OR environment = $3) \
             ORDER BY id DESC LIMIT $4"
        ),
        &[
            &project.as_str(),
            &release.digest().as_str(),
            &environment.map(Name::as_str),
            &limit(count),
        ],
    )
    .await?
    .iter()
    .map(decision_record)
    .collect()
}

pub(super) async fn record_refusal(
    client: &impl GenericClient,
    refusal: &NewRefusal,
    audit: &Audit,
) -> Result<()> {
    append(
        client,
        Draft {
            audit,
            action: &format!("{}.refused", refusal.what),
            project: refusal.project.as_str(),
            environment: None,
            release: refusal.release.as_ref(),
            digests: BTreeMap::new(),
            reason: Some(refusal.reason.clone()),
            detail: refusal.detail.clone(),
        },
    )
    .await
    .map(drop)
}

pub(super) async fn set_stop(
    client: &impl GenericClient,
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
    let stopped = exists(
        client,
        "SELECT EXISTS (SELECT 1 FROM stops WHERE project = $1 AND environment = $2)",
        &[&project.as_str(), &scope],
    )
    .await?;
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
        execute(
            client,
            "INSERT INTO stops (project, environment, reason, stopped_by, since) VALUES ($1, $2, $3, $4, $5)",
            &[&project.as_str(), &scope, &reason, &audit.actor, &time::now()],
        )
        .await?;
    } else {
        execute(
            client,
            "DELETE FROM stops WHERE project = $1 AND environment = $2",
            &[&project.as_str(), &scope],
        )
        .await?;
    }
    append(
        client,
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
    )
    .await?;
    Ok(())
}

pub(super) async fn stops(client: &impl GenericClient, project: &Name) -> Result<Vec<StopRecord>> {
    rows(
        client,
        "SELECT environment, reason, stopped_by, since FROM stops WHERE project = $1 ORDER BY environment",
        &[&project.as_str()],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(StopRecord {
            project: project.clone(),
            environment: none_if_empty("environment", column(row, "environment")?)?,
            reason: column(row, "reason")?,
            by: column(row, "stopped_by")?,
            since: column(row, "since")?,
        })
    })
    .collect()
}
