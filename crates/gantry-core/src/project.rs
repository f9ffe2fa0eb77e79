//! A project: its components, its environments and the promotion graph between them,
//! and the rules of that graph. Checked once when built; afterwards always valid.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::name::Name;
use crate::reference::{RegistryReference, Tag};
use crate::release::ReleaseId;

/// A registry repository without tag or digest: `host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    registry: String,
    path: String,
}

impl Repository {
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// This repository at a tag.
    pub fn at_tag(&self, tag: &Tag) -> RegistryReference {
        RegistryReference::new(&self.registry, &self.path, Some(tag.clone()), None)
    }

    /// This repository at exactly a digest.
    pub fn at_digest(&self, digest: &crate::Digest) -> RegistryReference {
        RegistryReference::new(&self.registry, &self.path, None, Some(digest.clone()))
    }
}

impl FromStr for Repository {
    type Err = String;

    /// `host/path`; a tag or digest is refused, since a repository names neither.
    fn from_str(text: &str) -> Result<Repository, String> {
        let explicit_version = text
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
            || text.contains('@');
        let reference: RegistryReference = text
            .parse()
            .map_err(|e: crate::ReferenceError| e.to_string())?;
        if explicit_version {
            return Err(format!(
                "{text:?} names a tag or digest; a repository is host/path only"
            ));
        }
        Ok(Repository {
            registry: reference.registry().to_owned(),
            path: reference.repository().to_owned(),
        })
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// How an environment moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binding {
    /// Promotes by itself each release that succeeds upstream.
    Track,
    /// Stays on its release until a person promotes.
    Pin,
}

/// How a promotion lands in an environment's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Same registry: manifest writes only.
    Retag,
    /// Another registry: blobs, manifests and referrers, digest preserved.
    Copy,
}

macro_rules! keyword_enum {
    ($type:ident, $what:literal, $($variant:ident => $text:literal),+) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self { $($type::$variant => $text),+ }
            }
        }

        impl FromStr for $type {
            type Err = String;

            fn from_str(text: &str) -> Result<$type, String> {
                match text {
                    $($text => Ok($type::$variant),)+
                    other => Err(format!(
                        concat!($what, " {:?} is not one of: {}"),
                        other,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keyword_enum!(Binding, "binding", Track => "track", Pin => "pin");
keyword_enum!(Strategy, "strategy", Retag => "retag", Copy => "copy");

/// Where registry credentials for an environment come from. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsRef {
    /// An environment variable holding `USER:PASSWORD`.
    Env(String),
    /// A file holding `USER:PASSWORD`, or a docker/containers auth file.
    File(String),
}

/// One artifact stream of a project, e.g. `api` from `registry.dev/payments/api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: Name,
    /// Its repository: where its releases come from and where registry pushes are watched.
    pub source: Repository,
    /// Other repositories its releases may come from (hotfix or pull-request builds);
    /// none unless the project file names some. See [`Component::release_reference`].
    pub also_from: Vec<crate::RepositoryPattern>,
}

/// Where a component lands for an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub repository: Repository,
    pub tags: Vec<Tag>,
}

/// A node of the promotion graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub name: Name,
    /// The environments a release must have reached first; none for an entry environment.
    pub upstreams: Vec<Name>,
    pub binding: Binding,
    pub strategy: Strategy,
    pub targets: BTreeMap<Name, Target>,
    pub credentials: Option<CredentialsRef>,
}

impl Environment {
    pub fn is_entry(&self) -> bool {
        self.upstreams.is_empty()
    }
}

/// The part of a project definition an error is about, so a caller can point at it
/// (a file position, an API field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Project,
    Component(Name),
    Environment(Name),
    Upstream { environment: Name, upstream: Name },
    Target { environment: Name, component: Name },
}

/// One thing wrong with a project definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ProjectError {
    pub field: Field,
    pub reason: String,
}

/// A valid project: every upstream exists, the graph has no cycle, every environment
/// has a target for every component, and `retag` stays inside one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    name: Name,
    components: BTreeMap<Name, Component>,
    environments: BTreeMap<Name, Environment>,
    /// Environments in an order where each comes after all its upstreams.
    order: Vec<Name>,
}

/// Why a promotion may not happen, in words for the person who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("project {project} has no environment {environment:?}")]
    UnknownEnvironment { project: Name, environment: String },
    #[error("{environment} already holds release {release}")]
    AlreadyHolds {
        environment: Name,
        release: ReleaseId,
    },
    #[error("release {release} has not reached {} yet, which {environment} requires first", join(.missing))]
    UpstreamsMissing {
        environment: Name,
        release: ReleaseId,
        missing: Vec<Name>,
    },
}

fn join(names: &[Name]) -> String {
    names
        .iter()
        .map(Name::as_str)
        .collect::<Vec<_>>()
        .join(" and ")
}

impl Project {
    /// Checks and builds a project. Every problem found is returned, not just the first.
    pub fn new(
        name: Name,
        components: Vec<Component>,
        environments: Vec<Environment>,
    ) -> Result<Project, Vec<ProjectError>> {
        let mut errors = Vec::new();
        let error = |field: Field, reason: String| ProjectError { field, reason };
        if components.is_empty() {
            errors.push(error(
                Field::Project,
                "a project needs at least one component".to_owned(),
            ));
        }
        if environments.is_empty() {
            errors.push(error(
                Field::Project,
                "a project needs at least one environment".to_owned(),
            ));
        }
        let mut component_map = BTreeMap::new();
        for component in components {
            if component_map.contains_key(&component.name) {
                errors.push(error(
                    Field::Component(component.name.clone()),
                    format!("component {} is defined twice", component.name),
                ));
            }
            component_map.insert(component.name.clone(), component);
        }
        let mut environment_map = BTreeMap::new();
        for environment in environments {
            if environment_map.contains_key(&environment.name) {
                errors.push(error(
                    Field::Environment(environment.name.clone()),
                    format!("environment {} is defined twice", environment.name),
                ));
            }
            environment_map.insert(environment.name.clone(), environment);
        }
        for environment in environment_map.values() {
            for upstream in &environment.upstreams {
                let field = || Field::Upstream {
                    environment: environment.name.clone(),
                    upstream: upstream.clone(),
                };
                if upstream == &environment.name {
                    errors.push(error(
                        field(),
                        format!("environment {} cannot come from itself", environment.name),
                    ));
                } else if !environment_map.contains_key(upstream) {
                    let known: Vec<&str> = environment_map.keys().map(Name::as_str).collect();
                    errors.push(error(
                        field(),
                        format!(
                            "unknown environment \"{upstream}\" (environments: {})",
                            known.join(", ")
                        ),
                    ));
                }
            }
            for component in component_map.keys() {
                if !environment.targets.contains_key(component) {
                    errors.push(error(
                        Field::Environment(environment.name.clone()),
                        format!(
                            "environment {} has no target for component {component}",
                            environment.name
                        ),
                    ));
                }
            }
            for (component, target) in &environment.targets {
                let field = || Field::Target {
                    environment: environment.name.clone(),
                    component: component.clone(),
                };
                if !component_map.contains_key(component) {
                    errors.push(error(field(), format!("unknown component \"{component}\"")));
                }
                if target.tags.is_empty() {
                    errors.push(error(field(), "a target needs at least one tag".to_owned()));
                }
            }
        }
        let order = match topological_order(&environment_map) {
            Ok(order) => order,
            Err(cycle) => {
                let path: Vec<&str> = cycle.iter().map(Name::as_str).collect();
                errors.push(error(
                    Field::Upstream {
                        environment: cycle[0].clone(),
                        upstream: cycle[1].clone(),
                    },
                    format!("environments form a cycle: {}", path.join(" <- ")),
                ));
                Vec::new()
            }
        };
        if errors.is_empty() {
            check_retag(&component_map, &environment_map, &mut errors);
        }
        if errors.is_empty() {
            Ok(Project {
                name,
                components: component_map,
                environments: environment_map,
                order,
            })
        } else {
            Err(errors)
        }
    }

    pub fn name(&self) -> &Name {
        &self.name
    }

    pub fn components(&self) -> impl Iterator<Item = &Component> {
        self.components.values()
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.get(name)
    }

    /// Environments, each after all of its upstreams.
    pub fn environments(&self) -> impl Iterator<Item = &Environment> {
        self.order.iter().map(|name| &self.environments[name])
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.get(name)
    }

    /// Environments a new release enters by itself.
    pub fn entry_environments(&self) -> impl Iterator<Item = &Environment> {
        self.environments().filter(|e| e.is_entry())
    }

    /// Environments that list `name` as an upstream.
    pub fn downstream_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Environment> {
        self.environments()
            .filter(move |e| e.upstreams.iter().any(|u| u.as_str() == name))
    }

    /// Whether `release` may be promoted into `environment`, given what that environment
    /// holds now and the environments the release has reached (succeeded in) so far.
    pub fn check_promotion(
        &self,
        environment: &str,
        release: &ReleaseId,
        current: Option<&ReleaseId>,
        reached: &BTreeSet<Name>,
    ) -> Result<&Environment, Refusal> {
        let target = self
            .environment(environment)
            .ok_or_else(|| Refusal::UnknownEnvironment {
                project: self.name.clone(),
                environment: environment.to_owned(),
            })?;
        if current == Some(release) {
            return Err(Refusal::AlreadyHolds {
                environment: target.name.clone(),
                release: release.clone(),
            });
        }
        let missing: Vec<Name> = target
            .upstreams
            .iter()
            .filter(|u| !reached.contains(*u))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::UpstreamsMissing {
                environment: target.name.clone(),
                release: release.clone(),
                missing,
            });
        }
        Ok(target)
    }
}

/// Kahn's algorithm; on a cycle, returns the names along one cycle.
fn topological_order(environments: &BTreeMap<Name, Environment>) -> Result<Vec<Name>, Vec<Name>> {
    let mut remaining: BTreeMap<&Name, BTreeSet<&Name>> = environments
        .values()
        .map(|e| {
            (
                &e.name,
                e.upstreams
                    .iter()
                    .filter(|u| environments.contains_key(*u) && **u != e.name)
                    .collect(),
            )
        })
        .collect();
    let mut order = Vec::new();
    loop {
        let ready: Vec<&Name> = remaining
            .iter()
            .filter(|(_, ups)| ups.is_empty())
            .map(|(name, _)| *name)
            .collect();
        if ready.is_empty() {
            break;
        }
        for name in ready {
            remaining.remove(name);
            for ups in remaining.values_mut() {
                ups.remove(name);
            }
            order.push(name.clone());
        }
    }
    if remaining.is_empty() {
        return Ok(order);
    }
    // Walk upstream links from any remaining node until one repeats: that is a cycle.
    let mut path: Vec<&Name> = vec![remaining.keys().next().expect("non-empty")];
    loop {
        let last = path[path.len() - 1];
        let next = remaining[last]
            .iter()
            .next()
            .expect("every remaining node has a remaining upstream");
        if let Some(start) = path.iter().position(|n| n == next) {
            let mut cycle: Vec<Name> = path[start..].iter().map(|n| (*n).clone()).collect();
            cycle.push((*next).clone());
            return Err(cycle);
        }
        path.push(next);
    }
}

/// `retag` writes manifests only, so the content must already be in the target's
/// registry: the component's source registry for an entry environment, or every
/// upstream's target registry.
fn check_retag(
    components: &BTreeMap<Name, Component>,
    environments: &BTreeMap<Name, Environment>,
    errors: &mut Vec<ProjectError>,
) {
    for environment in environments
        .values()
        .filter(|e| e.strategy == Strategy::Retag)
    {
        for (component, target) in &environment.targets {
            let sources: Vec<&Repository> = if environment.is_entry() {
                vec![&components[component].source]
            } else {
                environment
                    .upstreams
                    .iter()
                    .map(|u| &environments[u].targets[component].repository)
                    .collect()
            };
            for source in sources {
                if source.registry() != target.repository.registry() {
                    errors.push(ProjectError {
                        field: Field::Target {
                            environment: environment.name.clone(),
                            component: component.clone(),
                        },
                        reason: format!(
                            "strategy retag works inside one registry, but {component} comes from {} and lands in {}; use strategy copy",
                            source.registry(),
                            target.repository.registry()
                        ),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        text.parse().unwrap()
    }

    fn environment(
        env: &str,
        upstreams: &[&str],
        strategy: Strategy,
        registry: &str,
    ) -> Environment {
        Environment {
            name: name(env),
            upstreams: upstreams.iter().map(|u| name(u)).collect(),
            binding: Binding::Pin,
            strategy,
            targets: BTreeMap::from([(
                name("api"),
                Target {
                    repository: format!("{registry}/team/api").parse().unwrap(),
                    tags: vec![env.parse().unwrap()],
                },
            )]),
            credentials: None,
        }
    }

    fn project(environments: Vec<Environment>) -> Result<Project, Vec<ProjectError>> {
        let api = Component {
            name: name("api"),
            source: "reg.dev/team/api".parse().unwrap(),
            also_from: Vec::new(),
        };
        Project::new(name("payments"), vec![api], environments)
    }

    fn errors(environments: Vec<Environment>) -> Vec<String> {
        project(environments)
            .unwrap_err()
            .into_iter()
            .map(|e| e.reason)
            .collect()
    }

    #[test]
    fn fan_out_and_fan_in_in_order() {
        let project = project(vec![
            environment(
                "prod",
                &["staging-eu", "staging-us"],
                Strategy::Copy,
                "reg.prod",
            ),
            environment("staging-eu", &["dev"], Strategy::Retag, "reg.dev"),
            environment("staging-us", &["dev"], Strategy::Retag, "reg.dev"),
            environment("dev", &[], Strategy::Retag, "reg.dev"),
        ])
        .unwrap();
        let order: Vec<&str> = project.environments().map(|e| e.name.as_str()).collect();
        assert_eq!(order, ["dev", "staging-eu", "staging-us", "prod"]);
        let entries: Vec<&str> = project
            .entry_environments()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(entries, ["dev"]);
        let downstream: Vec<&str> = project
            .downstream_of("dev")
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(downstream, ["staging-eu", "staging-us"]);
    }

    #[test]
    fn refuses_bad_graphs() {
        assert_eq!(
            errors(vec![
                environment("dev", &[], Strategy::Retag, "reg.dev"),
                environment("a", &["b"], Strategy::Retag, "reg.dev"),
                environment("b", &["a"], Strategy::Retag, "reg.dev"),
            ]),
            ["environments form a cycle: a <- b <- a"]
        );
        assert_eq!(
            errors(vec![environment(
                "dev",
                &["stagin"],
                Strategy::Retag,
                "reg.dev"
            )]),
            ["unknown environment \"stagin\" (environments: dev)"]
        );
        assert_eq!(
            errors(vec![environment(
                "dev",
                &["dev"],
                Strategy::Retag,
                "reg.dev"
            )]),
            ["environment dev cannot come from itself"]
        );
        assert_eq!(
            errors(vec![environment("dev", &[], Strategy::Retag, "reg.other")]),
            [
                "strategy retag works inside one registry, but api comes from reg.dev and lands in reg.other; use strategy copy"
            ]
        );
        let mut missing_target = environment("dev", &[], Strategy::Copy, "reg.dev");
        missing_target.targets.clear();
        assert_eq!(
            errors(vec![missing_target]),
            ["environment dev has no target for component api"]
        );
        assert_eq!(errors(vec![]), ["a project needs at least one environment"]);
    }

    #[test]
    fn promotion_rules() {
        let project = project(vec![
            environment("dev", &[], Strategy::Retag, "reg.dev"),
            environment("prod", &["dev"], Strategy::Copy, "reg.prod"),
        ])
        .unwrap();
        let release = ReleaseId::from_digest(format!("sha256:{}", "a".repeat(64)).parse().unwrap());
        let nowhere = BTreeSet::new();
        let in_dev = BTreeSet::from([name("dev")]);
        assert!(
            project
                .check_promotion("dev", &release, None, &nowhere)
                .is_ok()
        );
        assert_eq!(
            project
                .check_promotion("prod", &release, None, &nowhere)
                .unwrap_err()
                .to_string(),
            format!(
                "release {} has not reached dev yet, which prod requires first",
                release.alias()
            )
        );
        assert!(
            project
                .check_promotion("prod", &release, None, &in_dev)
                .is_ok()
        );
        assert_eq!(
            project
                .check_promotion("prod", &release, Some(&release), &in_dev)
                .unwrap_err()
                .to_string(),
            format!("prod already holds release {}", release.alias())
        );
        assert_eq!(
            project
                .check_promotion("qa", &release, None, &in_dev)
                .unwrap_err()
                .to_string(),
            "project payments has no environment \"qa\""
        );
    }

    #[test]
    fn repositories_have_no_tags() {
        assert!("reg.dev:5000/team/api".parse::<Repository>().is_ok());
        assert!(
            "reg.dev/team/api:v1"
                .parse::<Repository>()
                .unwrap_err()
                .contains("names a tag or digest")
        );
        assert!("Reg/x".parse::<Repository>().is_err());
    }
}
