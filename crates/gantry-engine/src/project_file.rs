//! Project files: YAML describing one project's components and environments.
//!
//! ```yaml
//! project: payments
//! components:
//!   api: registry.dev.example/payments/api  # or {source: …, also_from: […]}, see [`components`]
//! environments:
//!   dev:                                   # an entry environment: no `from`
//!     binding: track                       # track | pin (default pin)
//!     strategy: retag                      # retag | copy (default copy)
//!     targets:
//!       api: {repository: registry.dev.example/payments/api, tags: [dev]}
//!   prod:
//!     from: dev                            # one upstream, or a list (fan-in)
//!     strategy: copy
//!     credentials: {env: PROD_REGISTRY_CREDS}   # or {file: /etc/gantry/prod-creds}
//!     targets:
//!       api: {repository: registry.prod.example/payments/api}   # tags default to [prod]
//! ```
//!
//! Every problem is reported as `FILE:LINE:COLUMN: reason`, including the ones found
//! only when the whole graph is checked (an unknown upstream, a cycle). The gates an
//! environment sets are described in [`gates`].

pub mod components;
pub mod gates;
pub mod trust;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use gantry_core::{
    Binding, CredentialsRef, Environment, Field, Name, Project, Repository, Strategy, Tag, Target,
};
use marked_yaml::{LoaderOptions, Marker, Spanned};
use serde::Deserialize;

pub use gates::Governance;
pub use trust::Trust;

/// A project file's whole content: the checked graph and its governance.
#[derive(Debug, Clone)]
pub struct Definition {
    pub project: Project,
    pub governance: Governance,
}

impl From<Project> for Definition {
    /// A project without gates: every release may go.
    fn from(project: Project) -> Definition {
        Definition {
            project,
            governance: Governance::default(),
        }
    }
}

/// One problem in a project file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFileError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl fmt::Display for ProjectFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.reason
        )
    }
}

/// Every problem found in a project file, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProjectFileErrors(pub Vec<ProjectFileError>);

impl fmt::Display for ProjectFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectWire {
    project: Spanned<String>,
    components: HashMap<Spanned<String>, Spanned<components::ComponentWire>>,
    environments: HashMap<Spanned<String>, EnvironmentWire>,
    #[serde(default)]
    groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    policies: Vec<Spanned<String>>,
    #[serde(default)]
    prometheus: Option<Spanned<String>>,
    #[serde(default)]
    trust: trust::TrustWire,
    #[serde(default)]
    watch: watch::WatchesWire,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvironmentWire {
    #[serde(default)]
    from: Option<Spanned<Upstreams>>,
    #[serde(default)]
    binding: Option<Spanned<String>>,
    #[serde(default)]
    strategy: Option<Spanned<String>>,
    #[serde(default)]
    targets: HashMap<Spanned<String>, TargetWire>,
    #[serde(default)]
    credentials: Option<Spanned<CredentialsWire>>,
    #[serde(default)]
    gates: Option<gates::GatesWire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetWire {
    repository: Spanned<String>,
    #[serde(default)]
    tags: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsWire {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<String>,
}

/// `from: dev` or `from: [staging-eu, staging-us]`.
struct Upstreams(Vec<String>);

impl<'de> Deserialize<'de> for Upstreams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Upstreams, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Upstreams;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an environment name or a list of them")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Upstreams, E> {
                Ok(Upstreams(vec![value.to_owned()]))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Upstreams, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Upstreams(names))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Parses a small YAML settings file into `T` (fields may be `Spanned`), with the same
/// `FILE:LINE:COLUMN: reason` errors as project files.
pub fn parse_settings<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, ProjectFileErrors> {
    let at = |marker: Option<Marker>, reason: String| ProjectFileError {
        file: file.to_owned(),
        line: marker.map_or(1, |m| m.line()),
        column: marker.map_or(1, |m| m.column()),
        reason,
    };
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let node = marked_yaml::parse_yaml_with_options(0, text, options).map_err(|e| {
        let (marker, reason) = load_error(&e);
        ProjectFileErrors(vec![at(marker, reason)])
    })?;
    marked_yaml::from_node(&node).map_err(|e| {
        let (marker, reason) = match &*e {
            marked_yaml::Error::UnknownFieldError(field, expected, _) => (
                find_key(&node, field).or(e.start_mark()),
                format!(
                    "unknown field {field:?}; expected one of: {}",
                    expected.join(", ")
                ),
            ),
            other => (e.start_mark(), lowercase_first(&other.to_string())),
        };
        ProjectFileErrors(vec![at(marker, reason)])
    })
}

/// Reads and checks a project file.
pub fn load(path: &Path) -> Result<Definition, ProjectFileErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ProjectFileErrors(vec![ProjectFileError {
            file: file.clone(),
            line: 0,
            column: 0,
            reason: format!("cannot read the project file: {e}"),
        }])
    })?;
    parse(&file, &text)
}

/// Parses and checks a project file's text; `file` names it in errors, and policy
/// files are read relative to its folder.
pub fn parse(file: &str, text: &str) -> Result<Definition, ProjectFileErrors> {
    let wire: ProjectWire = parse_settings(file, text)?;
    Converter {
        file,
        errors: Vec::new(),
        spans: HashMap::new(),
    }
    .convert(wire)
}

/// Where the first mapping key named `key` is, searching the whole tree.
fn find_key(node: &marked_yaml::Node, key: &str) -> Option<Marker> {
    match node {
        marked_yaml::Node::Mapping(mapping) => mapping.iter().find_map(|(name, value)| {
            if name.as_str() == key {
                name.span().start().copied()
            } else {
                find_key(value, key)
            }
        }),
        marked_yaml::Node::Sequence(sequence) => {
            sequence.iter().find_map(|item| find_key(item, key))
        }
        marked_yaml::Node::Scalar(_) => None,
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// Position and reason of a YAML syntax or structure error.
fn load_error(error: &marked_yaml::LoadError) -> (Option<Marker>, String) {
    use marked_yaml::LoadError::{
        DuplicateKey, MappingKeyMustBeScalar, ScanError, TopLevelMustBeMapping,
        TopLevelMustBeSequence, UnexpectedAnchor, UnexpectedTag,
    };
    let text = error.to_string();
    // The loader puts "LINE:COLUMN: " in front of its messages; keep only the reason.
    let reason = text
        .split_once(": ")
        .map_or(text.clone(), |(_, reason)| reason.to_owned());
    #[allow(deprecated)]
    match error {
        TopLevelMustBeMapping(m)
        | TopLevelMustBeSequence(m)
        | UnexpectedAnchor(m)
        | MappingKeyMustBeScalar(m)
        | UnexpectedTag(m)
        | ScanError(m, _) => (Some(*m), lowercase_first(&reason)),
        DuplicateKey(inner) => (
            inner.key.span().start().copied(),
            format!(
                "duplicate key {:?} (first defined at {})",
                inner.key.as_str(),
                inner
                    .prev_key
                    .span()
                    .start()
                    .map_or_else(|| "?".to_owned(), ToString::to_string)
            ),
        ),
    }
}

/// Where each part of the definition was written, for the checks that run on the whole.
#[derive(Hash, PartialEq, Eq)]
enum Place {
    Project,
    Component(String),
    Environment(String),
    Upstreams(String),
    Target(String, String),
}

struct Converter<'a> {
    file: &'a str,
    errors: Vec<ProjectFileError>,
    spans: HashMap<Place, Option<Marker>>,
}

impl Converter<'_> {
    fn error(&mut self, marker: Option<Marker>, reason: String) {
        self.errors.push(ProjectFileError {
            file: self.file.to_owned(),
            line: marker.map_or(1, |m| m.line()),
            column: marker.map_or(1, |m| m.column()),
            reason,
        });
    }

    fn name(&mut self, what: &str, text: &Spanned<String>) -> Option<Name> {
        match text.as_str().parse::<Name>() {
            Ok(name) => Some(name),
            Err(e) => {
                self.error(start(text), format!("{what} name {e}"));
                None
            }
        }
    }

    fn repository(&mut self, what: &str, text: &Spanned<String>) -> Option<Repository> {
        match text.as_str().parse::<Repository>() {
            Ok(repository) => Some(repository),
            Err(e) => {
                self.error(start(text), format!("{what}: {e}"));
                None
            }
        }
    }

    fn convert(mut self, mut wire: ProjectWire) -> Result<Definition, ProjectFileErrors> {
        self.spans.insert(Place::Project, start(&wire.project));
        let groups: BTreeMap<String, BTreeSet<String>> = std::mem::take(&mut wire.groups)
            .into_iter()
            .map(|(group, members)| (group, members.into_iter().collect()))
            .collect();
        let mut policy_cache = BTreeMap::new();
        let project_policies: Vec<Arc<_>> = std::mem::take(&mut wire.policies)
            .iter()
            .filter_map(|path| self.policy(&mut policy_cache, path))
            .collect();
        let prometheus = wire.prometheus.take().and_then(|url| self.prometheus(&url));
        let mut governance = Governance {
            prometheus,
            trust: self.trust(std::mem::take(&mut wire.trust)),
            groups,
            ..Governance::default()
        };
        let project = self.name("project", &wire.project);
        let mut components = Vec::new();
        let mut component_entries: Vec<_> = wire.components.into_iter().collect();
        component_entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (name, wire) in &component_entries {
            self.spans
                .insert(Place::Component(name.to_string()), start(name));
            if let Some(component) = self.component(name, wire) {
                components.push(component);
            }
        }
        let component_names: Vec<Name> = components.iter().map(|c| c.name.clone()).collect();
        governance.watches = self.watches(std::mem::take(&mut wire.watch), &component_names);
        let mut environment_entries: Vec<_> = wire.environments.into_iter().collect();
        environment_entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut environments = Vec::new();
        for (name, mut environment) in environment_entries {
            let gates = self.gates(
                environment.gates.take().unwrap_or_default(),
                &project_policies,
                &mut policy_cache,
                &mut governance,
            );
            governance.gates.insert(name.to_string(), gates);
            if let Some(environment) = self.environment(&name, environment) {
                environments.push(environment);
            }
        }
        if !self.errors.is_empty() {
            return Err(ProjectFileErrors(self.errors));
        }
        let project = project.expect("no errors means the name parsed");
        let project = Project::new(project, components, environments).map_err(|errors| {
            for error in errors {
                let place = match error.field {
                    Field::Project => Place::Project,
                    Field::Component(name) => Place::Component(name.to_string()),
                    Field::Environment(name) => Place::Environment(name.to_string()),
                    Field::Upstream { environment, .. } => {
                        Place::Upstreams(environment.to_string())
                    }
                    Field::Target {
                        environment,
                        component,
                    } => Place::Target(environment.to_string(), component.to_string()),
                };
                let marker = self.spans.get(&place).copied().flatten();
                self.error(marker, error.reason);
            }
            ProjectFileErrors(self.errors)
        })?;
        Ok(Definition {
            project,
            governance,
        })
    }

    fn environment(&mut self, key: &Spanned<String>, wire: EnvironmentWire) -> Option<Environment> {
        let key_text = key.to_string();
        self.spans
            .insert(Place::Environment(key_text.clone()), start(key));
        let name = self.name("environment", key);
        // Problems with upstreams point at `from`, or at the environment when it has none.
        let from_marker = wire.from.as_ref().map_or_else(|| start(key), start);
        self.spans
            .insert(Place::Upstreams(key_text.clone()), from_marker);
        let mut upstreams = Vec::new();
        for upstream in wire.from.iter().flat_map(|from| &from.0) {
            match upstream.parse::<Name>() {
                Ok(name) => upstreams.push(name),
                Err(e) => self.error(from_marker, format!("upstream environment name {e}")),
            }
        }
        let binding = match &wire.binding {
            Some(text) => text
                .parse::<Binding>()
                .map_err(|e| self.error(start(text), e))
                .ok(),
            None => Some(Binding::Pin),
        };
        let strategy = match &wire.strategy {
            Some(text) => text
                .parse::<Strategy>()
                .map_err(|e| self.error(start(text), e))
                .ok(),
            None => Some(Strategy::Copy),
        };
        let credentials = wire.credentials.as_ref().and_then(|credentials| match (&credentials.env, &credentials.file) {
            (Some(variable), None) => Some(CredentialsRef::Env(variable.clone())),
            (None, Some(file)) => Some(CredentialsRef::File(file.clone())),
            _ => {
                self.error(
                    start(credentials),
                    "credentials name exactly one of `env` (a variable holding USER:PASSWORD) or `file`; never the secret itself".to_owned(),
                );
                None
            }
        });
        let mut targets = BTreeMap::new();
        let mut target_entries: Vec<_> = wire.targets.into_iter().collect();
        target_entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (component, target) in target_entries {
            self.spans.insert(
                Place::Target(key_text.clone(), component.to_string()),
                start(&component),
            );
            let component = self.name("component", &component);
            let repository = self.repository("target repository", &target.repository);
            let tags = match &target.tags {
                Some(tags) => tags
                    .iter()
                    .filter_map(|tag| {
                        tag.parse::<Tag>()
                            .map_err(|reason| {
                                self.error(start(tag), format!("tag {:?} {reason}", tag.as_str()));
                            })
                            .ok()
                    })
                    .collect(),
                // The environment's own name is the natural tag: api:staging, api:prod.
                None => key_text.parse::<Tag>().into_iter().collect(),
            };
            if let (Some(component), Some(repository)) = (component, repository) {
                targets.insert(component, Target { repository, tags });
            }
        }
        Some(Environment {
            name: name?,
            upstreams,
            binding: binding?,
            strategy: strategy?,
            targets,
            credentials,
        })
    }
}

fn start<T>(spanned: &Spanned<T>) -> Option<Marker> {
    spanned.span().start().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
project: payments
components:
  api: registry.dev.example/payments/api
  worker: registry.dev.example/payments/worker
environments:
  dev:
    binding: track
    strategy: retag
    targets:
      api: {repository: registry.dev.example/payments/api, tags: [dev]}
      worker: {repository: registry.dev.example/payments/worker, tags: [dev]}
  staging:
    from: dev
    binding: track
    strategy: retag
    targets:
      api: {repository: registry.dev.example/payments/api}
      worker: {repository: registry.dev.example/payments/worker}
  prod:
    from: [staging]
    strategy: copy
    credentials: {env: PROD_REGISTRY_CREDS}
    targets:
      api: {repository: registry.prod.example/payments/api, tags: [prod, stable]}
      worker: {repository: registry.prod.example/payments/worker}
";

    #[test]
    fn reads_a_project() {
        let project = parse("payments.yaml", GOOD).unwrap().project;
        assert_eq!(project.name().as_str(), "payments");
        let order: Vec<&str> = project.environments().map(|e| e.name.as_str()).collect();
        assert_eq!(order, ["dev", "staging", "prod"]);
        let staging = project.environment("staging").unwrap();
        assert_eq!(staging.binding, Binding::Track);
        assert_eq!(
            staging.targets[&"api".parse::<Name>().unwrap()].tags[0].as_str(),
            "staging",
            "tags default to the environment's name"
        );
        let prod = project.environment("prod").unwrap();
        assert_eq!(
            prod.binding,
            Binding::Pin,
            "pin is the default: nothing moves by surprise"
        );
        assert_eq!(
            prod.credentials,
            Some(CredentialsRef::Env("PROD_REGISTRY_CREDS".to_owned()))
        );
        assert_eq!(prod.targets[&"api".parse::<Name>().unwrap()].tags.len(), 2);
    }

    #[test]
    fn errors_have_positions() {
        let cases: Vec<(String, &[&str])> = vec![
            (
                "project: [\n".to_owned(),
                &["p.yaml:2:1: while parsing a node, did not find expected node content"],
            ),
            (
                GOOD.replace("project: payments", "project: Payments"),
                &[
                    "p.yaml:1:10: project name \"Payments\" may contain only a-z, 0-9 and '-', found 'P'",
                ],
            ),
            (
                format!("{GOOD}extra: 1\n"),
                &[
                    "p.yaml:26:1: unknown field \"extra\"; expected one of: project, components, environments, groups, policies, prometheus, trust, watch",
                ],
            ),
            (
                GOOD.replace("from: dev", "from: stagin"),
                &[
                    "p.yaml:13:11: unknown environment \"stagin\" (environments: dev, prod, staging)",
                ],
            ),
            (
                GOOD.replace(
                    "  dev:\n    binding: track",
                    "  dev:\n    from: prod\n    binding: track",
                ),
                &["p.yaml:7:11: environments form a cycle: dev <- prod <- staging <- dev"],
            ),
            (
                GOOD.replace("binding: track", "binding: auto"),
                &[
                    "p.yaml:7:14: binding \"auto\" is not one of: track, pin",
                    "p.yaml:14:14: binding \"auto\" is not one of: track, pin",
                ],
            ),
            (
                GOOD.replace(
                    "credentials: {env: PROD_REGISTRY_CREDS}",
                    "credentials: {password: hunter2}",
                ),
                &["p.yaml:22:19: unknown field \"password\"; expected one of: env, file"],
            ),
            (
                GOOD.replace(
                    "api: registry.dev.example/payments/api\n",
                    "api: registry.dev.example/payments/api:v1\n",
                ),
                &[
                    "p.yaml:3:8: component source: \"registry.dev.example/payments/api:v1\" names a tag or digest; a repository is host/path only",
                ],
            ),
            (
                GOOD.replace("tags: [prod, stable]", "tags: [prod, -bad]"),
                &["p.yaml:24:74: tag \"-bad\" must start with a letter, digit or '_'"],
            ),
            (
                GOOD.replace("  staging:\n", "  dev:\n"),
                &["p.yaml:12:3: duplicate key \"dev\" (first defined at 6:3)"],
            ),
            (
                GOOD.replace(
                    "      worker: {repository: registry.prod.example/payments/worker}\n",
                    "",
                ),
                &["p.yaml:19:3: environment prod has no target for component worker"],
            ),
            (
                GOOD.replace("strategy: copy", "strategy: retag"),
                &[
                    "p.yaml:24:7: strategy retag works inside one registry, but api comes from registry.dev.example and lands in registry.prod.example; use strategy copy",
                    "p.yaml:25:7: strategy retag works inside one registry, but worker comes from registry.dev.example and lands in registry.prod.example; use strategy copy",
                ],
            ),
        ];
        for (text, expect) in cases {
            let errors = parse("p.yaml", &text).unwrap_err();
            let got: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            assert_eq!(got, expect);
        }
    }

    #[test]
    fn unreadable_files_are_named() {
        let error = load(Path::new("/nonexistent/project.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("/nonexistent/project.yaml:0:0: cannot read the project file"),
            "{error}"
        );
    }
}
