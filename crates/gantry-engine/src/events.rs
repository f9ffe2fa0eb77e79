//! Registry pushes: a tag pushed to a component's source repository that its `watch:`
//! rule admits makes a release. The other components of the release are those of the
//! project's latest release, so a push of one component moves it alone. The same push
//! reported twice makes one release: a release is named by its content.

use std::collections::BTreeMap;

use gantry_core::{Digest, Repository};

use crate::engine::{Engine, EngineError};

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
            for (component, rule) in &governance.watches {
                let Some(watched) = project.component(component.as_str()) else {
                    continue;
                };
                if watched.source != pushed || !rule.matches(&push.tag) {
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
                        let source = project.component(artifact.component.as_str()).map_or_else(
                            || artifact.source.clone(),
                            |c| c.source.at_digest(&artifact.digest).to_string(),
                        );
                        references.insert(artifact.component.to_string(), source);
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
                    Err(error @ (EngineError::Registry { .. } | EngineError::Invalid(_))) => {
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
