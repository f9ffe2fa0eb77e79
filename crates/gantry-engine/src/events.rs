//! Registry pushes: a tag pushed to a component's source repository that its `watch:`
//! rule admits makes a release. The other components of the release are those of the
//! project's latest release, so a push of one component moves it alone. The same push
//! reported twice makes one release: a release is named by its content.
//!
//! Pushes come from registry notifications, or from one poller per component whose
//! `watch:` sets `poll:` (registries that cannot send events).

use std::collections::{BTreeMap, BTreeSet};

use gantry_core::{Digest, Name, Reference, Repository};
use gantry_oci::Endpoint;

use crate::engine::{Engine, EngineError};
use crate::project_file::watch::{TagRule, Watch};

/// A manifest pushed under a tag: what a registry notification or a poll reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// `host[:port]/path`, as the component's `source` names it.
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
}

/// What a push did for one watching component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// A release was made (or, `created: false`, it existed already).
    Release {
        project: String,
        component: String,
        alias: String,
        created: bool,
    },
    /// The push matched a component but could not make a release.
    Skipped {
        project: String,
        component: String,
        reason: String,
    },
}

impl Engine {
    /// Makes a release for every project whose component watches `push.repository` and
    /// whose rule admits `push.tag`. A push no component watches does nothing.
    pub async fn registry_push(
        &self,
        push: &Push,
        actor: &str,
    ) -> Result<Vec<PushOutcome>, EngineError> {
        let pushed: Repository =
            push.repository
                .parse()
                .map_err(|reason: String| EngineError::InvalidField {
                    field: "repository",
                    reason,
                })?;
        let mut outcomes = Vec::new();
        for (name, governance) in &self.inner.governance {
            let project = self.project(name.as_str())?;
            for (component, watch) in &governance.watches {
                let Some(watched) = project.component(component.as_str()) else {
                    continue;
                };
                if watched.source != pushed || !watch.rule.matches(&push.tag) {
                    continue;
                }
                let skipped = |reason: String| PushOutcome::Skipped {
                    project: name.to_string(),
                    component: component.to_string(),
                    reason,
                };
                let mut references = BTreeMap::new();
                references.insert(
                    component.to_string(),
                    pushed.at_digest(&push.digest).to_string(),
                );
                if project.components().count() > 1 {
                    let Some(latest) = self.inner.store.latest_release(name).await? else {
                        outcomes.push(skipped(
                            "the project has no release yet to take its other components from; create the first one by hand".to_owned(),
                        ));
                        continue;
                    };
                    for artifact in latest
                        .artifacts
                        .iter()
                        .filter(|a| &a.component != component)
                    {
                        references
                            .insert(artifact.component.to_string(), unchanged(project, artifact));
                    }
                }
                // No labels: a release is its content, so the same digest pushed again
                // under another tag (or retagged by a promotion) is the same release.
                match self
                    .create_release(name.as_str(), references, BTreeMap::new(), actor)
                    .await
                {
                    Ok((release, created)) => outcomes.push(PushOutcome::Release {
                        project: name.to_string(),
                        component: component.to_string(),
                        alias: release.alias,
                        created,
                    }),
                    Err(
                        error @ (EngineError::Registry { .. }
                        | EngineError::Invalid(_)
                        | EngineError::InvalidField { .. }),
                    ) => {
                        // Told about content the registry does not (or no longer) hold:
                        // nothing to release.
                        outcomes.push(skipped(error.to_string()));
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(outcomes)
    }
}

impl Engine {
    /// Starts a poller for every watched component with `poll:`.
    pub(crate) fn start_pollers(&self) {
        for (project, governance) in &self.inner.governance {
            for (component, watch) in &governance.watches {
                let (Some(every), Some(source)) = (
                    watch.poll,
                    self.inner
                        .projects
                        .get(project)
                        .and_then(|p| p.component(component.as_str())),
                ) else {
                    continue;
                };
                let engine = self.clone();
                let (project, component, watch, source) = (
                    project.clone(),
                    component.clone(),
                    watch.clone(),
                    source.source.clone(),
                );
                tokio::spawn(async move {
                    engine
                        .poll(&project, &component, &watch, &source, every)
                        .await;
                });
            }
        }
    }

    /// Lists the tags of `source` every `every`; new admitted tags are pushes.
    async fn poll(
        &self,
        project: &Name,
        component: &Name,
        watch: &Watch,
        source: &Repository,
        every: std::time::Duration,
    ) {
        let endpoint = Endpoint::new(Reference::Registry(
            source.at_tag(&"latest".parse().expect("`latest` is a tag")),
        ));
        let mut seen: Option<BTreeSet<String>> = None;
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if self.is_draining() {
                return;
            }
            let tags = match gantry_oci::list_tags(&self.inner.registries, &endpoint).await {
                Ok(tags) => tags,
                Err(error) => {
                    tracing::warn!(%project, %component, %error, "polling the tags failed");
                    continue;
                }
            };
            let admitted: Vec<String> =
                tags.into_iter().filter(|t| watch.rule.matches(t)).collect();
            let new: Vec<String> = match &seen {
                Some(seen) => admitted
                    .iter()
                    .filter(|t| !seen.contains(*t))
                    .cloned()
                    .collect(),
                None => highest(&watch.rule, &admitted).into_iter().collect(),
            };
            let mut failed = BTreeSet::new();
            for tag in new {
                if let Err(error) = self.poll_push(source, &tag).await {
                    tracing::warn!(%project, %component, tag, %error, "a polled tag made no release");
                    failed.insert(tag);
                }
            }
            // A tag that failed is tried again at the next look.
            seen = Some(
                admitted
                    .into_iter()
                    .filter(|t| !failed.contains(t))
                    .collect(),
            );
        }
    }

    async fn poll_push(&self, source: &Repository, tag: &str) -> Result<(), EngineError> {
        let tag_name = tag
            .parse()
            .map_err(|e: String| EngineError::Invalid(format!("tag {tag:?}: {e}")))?;
        let endpoint = Endpoint::new(Reference::Registry(source.at_tag(&tag_name)));
        let digest = gantry_oci::resolve_digest(&self.inner.registries, &endpoint)
            .await
            .map_err(|error| EngineError::Invalid(format!("{source}:{tag}: {error}")))?;
        let push = Push {
            repository: source.to_string(),
            tag: tag.to_owned(),
            digest,
        };
        for outcome in self.registry_push(&push, "gantry-poller").await? {
            if let PushOutcome::Skipped { reason, .. } = outcome {
                return Err(EngineError::Invalid(reason));
            }
        }
        Ok(())
    }
}

/// A component a push did not touch, by digest: in the repository the latest release
/// took it from when the project still allows that one (its source, or an `also_from`
/// repository), else in its source. `create_release` checks the result again.
fn unchanged(project: &gantry_core::Project, artifact: &gantry_store::store::Artifact) -> String {
    let Some(component) = project.component(artifact.component.as_str()) else {
        return artifact.source.clone();
    };
    artifact
        .source
        .parse::<gantry_core::RegistryReference>()
        .ok()
        .map(|came_from| {
            gantry_core::RegistryReference::new(
                came_from.registry(),
                came_from.repository(),
                None,
                Some(artifact.digest.clone()),
            )
            .to_string()
        })
        .filter(|reference| component.release_reference(reference).is_ok())
        .unwrap_or_else(|| component.source.at_digest(&artifact.digest).to_string())
}

/// The highest version among `tags` for a semver rule; none for a glob.
fn highest(rule: &TagRule, tags: &[String]) -> Option<String> {
    let TagRule::Semver(_) = rule else {
        return None;
    };
    tags.iter()
        .filter_map(|t| {
            semver::Version::parse(t.strip_prefix('v').unwrap_or(t))
                .ok()
                .map(|v| (v, t))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, t)| t.clone())
}
