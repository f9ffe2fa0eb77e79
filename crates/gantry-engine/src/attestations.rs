//! Signatures and attestations already in the registry, beside each component's digest:
//! read with [`gantry_oci::attached`] (referrers, or cosign's `.sig` and `.att` tags),
//! verified with [`gantry_evidence::signature`] against the project's `trust:`, and
//! turned into facts. A verified signature names its signer; a verified attestation
//! carrying SLSA provenance is also kept as evidence. Policies never see what did not
//! verify: it is refused, and the refusal recorded in the ledger once.
//!
//! Layers are recognised by media type:
//! - `application/vnd.dev.cosign.simplesigning.v1+json` with a
//!   `dev.cosignproject.cosign/signature` annotation: a cosign key-based signature;
//! - `application/vnd.dsse.envelope.v1+json`: a DSSE envelope (cosign attestations),
//!   whose in-toto statement must name the digest;
//! - `application/vnd.dev.sigstore.bundle…`: a Sigstore bundle, verified offline against
//!   the trusted root and the identities the `signed_by` gates name.
//!
//! Anything else (SBOMs, unknown artifacts) is left alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use gantry_core::{Digest, Name, Project, Reference};
use gantry_evidence::Kind;
use gantry_evidence::signature::{
    self, IN_TOTO_PAYLOAD_TYPE, SIMPLE_SIGNING_PAYLOAD_TYPE, SignatureError, Verified,
};
use gantry_oci::{Attached, AttachedLayer, Endpoint, Via};
use gantry_policy::{Gates, Signer, SignerFact};
use gantry_store::store::{EvidenceRecord, ReleaseRecord};
use serde::Deserialize;
use serde_json::json;

use crate::engine::{ENGINE, Engine, EngineError};
use crate::project_file::Trust;

const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// How long a look at the registry stands before gates look again: evaluations come in
/// bursts (a request, the re-check before running, waiting promotions reconsidered),
/// and one look serves the burst.
const FRESH_FOR: Duration = Duration::from_secs(10);

/// What one look at the registry found for a release.
#[derive(Debug, Clone, Default)]
pub struct Pulled {
    /// Verified signers, one per verified signature or attestation.
    pub signers: Vec<SignerFact>,
    /// Attestations kept as evidence by this look (not those kept before).
    pub evidence_added: usize,
    /// What did not verify, per component.
    pub refused: Vec<Refused>,
    /// Components whose registry could not be read, and why.
    pub unreachable: Vec<(String, String)>,
}

/// A signature or attestation that did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub component: String,
    /// The layer's digest.
    pub digest: Digest,
    pub reason: String,
}

/// The per-engine memory of looks at the registry.
#[derive(Default)]
pub(crate) struct PullCache {
    looks: HashMap<(Name, Digest), (Instant, Vec<SignerFact>)>,
    /// Whose DSSE signature over a piece of evidence handed in through the API verified
    /// (`None`: none did). Evidence is content-addressed and `trust:` fixed for the
    /// engine's life, so the answer never goes stale.
    evidence_signers: HashMap<(Name, Digest), Option<Signer>>,
    /// Layers already refused in the ledger, so a look that finds the same bad layer
    /// again does not record it again.
    refused: HashSet<Digest>,
}

/// The parts of an in-toto statement checked before it counts.
#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "predicateType")]
    predicate_type: String,
    subject: Vec<Subject>,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

/// Whether these gates read what the registry holds.
fn reads_registry(gates: &Gates) -> bool {
    gates.signed_by.is_some() || gates.provenance.is_some() || !gates.policies.is_empty()
}

impl Engine {
    /// The verified signers of a release's components, from a recent look at the
    /// registry or a new one; empty when the gates do not read signatures or nothing
    /// is configured to verify them with.
    ///
    /// With `record` false (an explanation, which is a read), any earlier look serves
    /// whatever its age, and a new look keeps nothing and records nothing: what did not
    /// verify is left out without a `signature.refused` entry, and verified provenance is
    /// not kept as evidence (a look that records, or `gantry evidence pull`, keeps it).
    pub(crate) async fn signers(
        &self,
        project: &Project,
        release: &ReleaseRecord,
        gates: &Gates,
        record: bool,
    ) -> Result<Vec<SignerFact>, EngineError> {
        if !reads_registry(gates) || self.trust(project.name()).is_none() {
            return Ok(Vec::new());
        }
        let key = (project.name().clone(), release.id.digest().clone());
        if let Some((at, signers)) = self.inner.pulls.lock().expect("lock").looks.get(&key) {
            if at.elapsed() < FRESH_FOR || !record {
                return Ok(signers.clone());
            }
        }
        let pulled = self
            .pull(project, release, record.then_some(ENGINE))
            .await?;
        for (component, error) in &pulled.unreachable {
            tracing::warn!(project = %project.name(), release = %release.alias, component, error, "cannot read signatures from the registry");
        }
        Ok(pulled.signers)
    }

    /// Looks at the registry for a release's signatures and attestations now, keeps
    /// what verifies, records what does not, and has waiting promotions look at their
    /// gates again: what `gantry evidence pull` does.
    pub async fn pull_attached(
        &self,
        project: &str,
        release: &str,
        actor: &str,
    ) -> Result<Pulled, EngineError> {
        let project = self.project(project)?;
        let record = self.release(project, release).await?;
        if self.trust(project.name()).is_none() {
            return Err(EngineError::InvalidField {
                field: "trust",
                reason: format!(
                    "project {} configures no keys and no Sigstore trusted root to verify signatures with",
                    project.name()
                ),
            });
        }
        let pulled = self.pull(project, &record, Some(actor)).await?;
        self.reconsider_later(project.name());
        Ok(pulled)
    }

    /// The signer of a piece of evidence: the signature the registry look verified for
    /// these exact bytes (attestations kept from the registry), or, for provenance
    /// handed in through the API, its DSSE envelope's signature verified against the
    /// project's keys. A bare statement, or an envelope no trusted key signed, has none:
    /// it is kept as information and counts as unsigned.
    pub(crate) async fn evidence_signer(
        &self,
        project: &Name,
        record: &EvidenceRecord,
        kind: &Kind,
        signers: &[SignerFact],
    ) -> Result<Option<Signer>, EngineError> {
        if let Some(fact) = signers.iter().find(|s| s.digest == record.digest) {
            return Ok(Some(fact.signer.clone()));
        }
        if *kind != Kind::SlsaProvenance {
            return Ok(None);
        }
        let Some(trust) = self.trust(project).filter(|t| !t.keys.is_empty()) else {
            return Ok(None);
        };
        let key = (project.clone(), record.digest.clone());
        if let Some(known) = self
            .inner
            .pulls
            .lock()
            .expect("lock")
            .evidence_signers
            .get(&key)
        {
            return Ok(known.clone());
        }
        let bytes = self
            .inner
            .store
            .evidence_bytes(project, &record.digest)
            .await?
            .unwrap_or_default();
        let signer = match signature::verify_dsse(&bytes, &trust.keys) {
            Ok(verified) => match verified.signer {
                signature::Signer::Key { name } => Some(Signer::Key(name)),
                signature::Signer::Identity { issuer, subject } => {
                    Some(Signer::Identity { issuer, subject })
                }
            },
            Err(_) => None,
        };
        self.inner
            .pulls
            .lock()
            .expect("lock")
            .evidence_signers
            .insert(key, signer.clone());
        Ok(signer)
    }

    fn trust(&self, project: &Name) -> Option<&Trust> {
        self.inner
            .governance
            .get(project)
            .map(|g| &g.trust)
            .filter(|t| !t.is_empty())
    }

    /// One look at the registry. With an `actor`, what verifies is kept and what does
    /// not is recorded, by that actor; without one, nothing is kept or recorded.
    async fn pull(
        &self,
        project: &Project,
        release: &ReleaseRecord,
        actor: Option<&str>,
    ) -> Result<Pulled, EngineError> {
        let trust = self.trust(project.name()).cloned().unwrap_or_default();
        let mut pulled = Pulled::default();
        for artifact in &release.artifacts {
            let component = artifact.component.to_string();
            let Some(source) = project.component(artifact.component.as_str()) else {
                continue;
            };
            let endpoint = Endpoint::new(Reference::Registry(
                source.source.at_digest(&artifact.digest),
            ));
            let attached = match gantry_oci::attached(&self.inner.registries, &endpoint).await {
                Ok(attached) => attached,
                Err(error) => {
                    pulled.unreachable.push((component, error.to_string()));
                    continue;
                }
            };
            for item in &attached {
                for layer in &item.layers {
                    match verify_layer(layer, &artifact.digest, &trust) {
                        None => {}
                        Some(Ok(verified)) => {
                            self.keep_verified(
                                project,
                                release,
                                &artifact.component,
                                item,
                                layer,
                                &verified,
                                actor,
                                &mut pulled,
                            )
                            .await?;
                        }
                        Some(Err(reason)) => {
                            if actor.is_some() {
                                self.refuse(project, release, &component, item, layer, &reason)
                                    .await?;
                            }
                            pulled.refused.push(Refused {
                                component: component.clone(),
                                digest: layer.digest.clone(),
                                reason,
                            });
                        }
                    }
                }
            }
        }
        if actor.is_none() {
            // A look that kept nothing must not stand in for one that keeps.
            return Ok(pulled);
        }
        let mut pulls = self.inner.pulls.lock().expect("lock");
        // Stale looks are of no use; dropping them keeps the memory to recent releases.
        pulls.looks.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
        pulls.looks.insert(
            (project.name().clone(), release.id.digest().clone()),
            (Instant::now(), pulled.signers.clone()),
        );
        drop(pulls);
        Ok(pulled)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one verified layer and where it came from"
    )]
    async fn keep_verified(
        &self,
        project: &Project,
        release: &ReleaseRecord,
        component: &Name,
        item: &Attached,
        layer: &AttachedLayer,
        verified: &Verified,
        actor: Option<&str>,
        pulled: &mut Pulled,
    ) -> Result<(), EngineError> {
        pulled.signers.push(SignerFact {
            component: component.to_string(),
            signer: match &verified.signer {
                signature::Signer::Key { name } => Signer::Key(name.clone()),
                signature::Signer::Identity { issuer, subject } => Signer::Identity {
                    issuer: issuer.clone(),
                    subject: subject.clone(),
                },
            },
            digest: layer.digest.clone(),
        });
        let (Some(actor), Some((IN_TOTO_PAYLOAD_TYPE, payload))) = (actor, verified.payload())
        else {
            return Ok(());
        };
        let is_provenance = serde_json::from_slice::<Statement>(payload)
            .is_ok_and(|s| s.predicate_type == SLSA_PROVENANCE_V1);
        if !is_provenance {
            return Ok(());
        }
        let source = format!(
            "registry {}@{} ({}), signed by {}",
            project
                .component(component.as_str())
                .map(|c| c.source.to_string())
                .unwrap_or_default(),
            item.manifest.digest,
            via(item),
            verified.signer
        );
        match self
            .keep_evidence(
                project,
                release,
                Some(component),
                &Kind::SlsaProvenance,
                layer.bytes.to_vec(),
                &source,
                actor,
            )
            .await
        {
            Ok(added) => {
                pulled.evidence_added += usize::from(added.created);
                Ok(())
            }
            // A verified statement the provenance parser cannot read is refused as
            // evidence but still counts as a signature.
            Err(EngineError::InvalidField { reason, .. }) => {
                self.refuse(project, release, component.as_str(), item, layer, &reason)
                    .await
            }
            Err(other) => Err(other),
        }
    }

    /// Records a refused layer in the ledger, once per layer.
    async fn refuse(
        &self,
        project: &Project,
        release: &ReleaseRecord,
        component: &str,
        item: &Attached,
        layer: &AttachedLayer,
        reason: &str,
    ) -> Result<(), EngineError> {
        if !self
            .inner
            .pulls
            .lock()
            .expect("lock")
            .refused
            .insert(layer.digest.clone())
        {
            return Ok(());
        }
        tracing::warn!(project = %project.name(), release = %release.alias, component, layer = %layer.digest, reason, "signature refused");
        self.record_refusal(
            project,
            release,
            "signature",
            reason.to_owned(),
            json!({
                "component": component,
                "manifest": item.manifest.digest.as_str(),
                "layer": layer.digest.as_str(),
                "media_type": layer.media_type,
                "via": via(item),
            }),
            ENGINE,
        )
        .await
    }
}

fn via(item: &Attached) -> String {
    match &item.via {
        Via::Referrer => "referrer".to_owned(),
        Via::CosignTag(tag) => format!("tag {tag}"),
    }
}

/// Verifies one layer about `expected`: `None` when the layer is no signature Gantry
/// knows, else the verified signature or why it was refused.
fn verify_layer(
    layer: &AttachedLayer,
    expected: &Digest,
    trust: &Trust,
) -> Option<Result<Verified, String>> {
    let media_type = layer.media_type.as_str();
    let result = if media_type == SIMPLE_SIGNING_PAYLOAD_TYPE {
        let signature = layer.annotations.get(COSIGN_SIGNATURE_ANNOTATION)?;
        signature::verify_cosign(&layer.bytes, signature, expected, &trust.keys)
            .map_err(|e| e.to_string())
    } else if media_type == DSSE_MEDIA_TYPE {
        signature::verify_dsse(&layer.bytes, &trust.keys)
            .map_err(|e| e.to_string())
            .and_then(|verified| names(&verified, expected).map(|()| verified))
    } else if media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
        verify_bundle(&layer.bytes, expected, trust)
    } else {
        return None;
    };
    Some(result)
}

/// Checks that a verified DSSE payload is an in-toto statement about `expected`.
fn names(verified: &Verified, expected: &Digest) -> Result<(), String> {
    let Some((payload_type, payload)) = verified.payload() else {
        return Ok(());
    };
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(format!(
            "DSSE payload type {payload_type:?} is not {IN_TOTO_PAYLOAD_TYPE:?}"
        ));
    }
    let statement: Statement = serde_json::from_slice(payload)
        .map_err(|e| format!("in-toto statement is malformed: {e}"))?;
    let named = statement.subject.iter().any(|s| {
        s.digest
            .get(expected.algorithm().name())
            .map(String::as_str)
            == Some(expected.hex())
    });
    if named {
        Ok(())
    } else {
        Err(format!(
            "in-toto statement ({}) does not name {expected}",
            statement.predicate_type
        ))
    }
}

/// A bundle verifies when one identity the gates name admits it; the refusal shown is
/// the one from the first identity, or that none is configured.
fn verify_bundle(bytes: &[u8], expected: &Digest, trust: &Trust) -> Result<Verified, String> {
    let Some(root) = &trust.sigstore_root else {
        return Err("Sigstore bundle cannot be verified: no trust.sigstore_root".to_owned());
    };
    if trust.identities.is_empty() {
        return Err(
            "Sigstore bundle cannot be verified: no signed_by gate names an identity".to_owned(),
        );
    }
    let mut first: Option<SignatureError> = None;
    for identity in &trust.identities {
        match signature::verify_bundle(bytes, expected, root, identity) {
            Ok(verified) => return Ok(verified),
            Err(error) => {
                first.get_or_insert(error);
            }
        }
    }
    Err(first.map_or_else(String::new, |e| e.to_string()))
}
