//! Where a component's releases may come from: its own source repository, and any
//! repositories the project file also allows. The rule is decided from the text of a
//! reference alone, before anything is dialled or opened, and every reference outside
//! the allowed repositories gets the same refusal, so an answer never tells what lies
//! outside them (another team's repository, a host, the server's filesystem).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::glob::glob;
use crate::name::Name;
use crate::project::{Component, Repository};
use crate::reference::{RegistryReference, Tag};

/// A repository a component's releases may also come from: `host[:port]/path`, where
/// `*` in the path matches any run of characters inside one path segment
/// (`registry.dev/payments/api-pr-*`). The host is always written out and never a
/// pattern, so the server dials only hosts the project file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryPattern {
    registry: String,
    path: String,
}

impl RepositoryPattern {
    /// Whether `registry`/`path` is a repository this pattern names.
    pub fn matches(&self, registry: &str, path: &str) -> bool {
        if registry != self.registry {
            return false;
        }
        let (patterns, segments): (Vec<&str>, Vec<&str>) =
            (self.path.split('/').collect(), path.split('/').collect());
        patterns.len() == segments.len()
            && patterns
                .iter()
                .zip(&segments)
                .all(|(pattern, segment)| glob(pattern, segment))
    }
}

impl FromStr for RepositoryPattern {
    type Err = String;

    /// `host/path` with optional `*` in the path; a tag, a digest, `oci:` or a pattern
    /// in the host is refused.
    fn from_str(text: &str) -> Result<RepositoryPattern, String> {
        let Some((host, path)) = text.split_once('/') else {
            return Err(format!(
                "{text:?} names no host: write host/path, e.g. registry.example/team/api-*"
            ));
        };
        if host.contains('*') || !(host.contains('.') || host.contains(':') || host == "localhost")
        {
            return Err(format!(
                "{text:?}: the first part must be a registry host (with a '.' or a :port, or localhost) and contain no '*'"
            ));
        }
        if text.starts_with("oci:") {
            return Err(format!(
                "{text:?}: an OCI layout on disk cannot be a source; name a registry repository"
            ));
        }
        if path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
            || path.contains('@')
        {
            return Err(format!(
                "{text:?} names a tag or digest; a repository is host/path only"
            ));
        }
        // Check the shape with every `*` standing for one letter: the parsed path is the
        // same apart from Docker Hub's `library/` prefix, which is kept.
        let stand_in = text.replace('*', "a");
        let parsed: Repository = stand_in
            .parse()
            .map_err(|e: String| e.replace(&format!("{stand_in:?}"), &format!("{text:?}")))?;
        let prefix_length = parsed.path().len() - path.len();
        Ok(RepositoryPattern {
            registry: parsed.registry().to_owned(),
            path: format!("{}{path}", &parsed.path()[..prefix_length]),
        })
    }
}

impl fmt::Display for RepositoryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// Why a component's reference cannot make a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub component: Name,
    pub problem: SourceProblem,
}

/// What is wrong with a component's reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceProblem {
    /// Outside the repositories the component may come from, or an OCI layout. One
    /// answer for all of them: the message does not repeat the reference.
    NotAllowed {
        source: Repository,
        also_from: Vec<RepositoryPattern>,
    },
    /// An allowed repository, but no tag or digest: never `latest` by default.
    NoVersion { source: Repository },
    /// Not a reference at all; the reason names the part.
    Malformed(String),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let component = &self.component;
        let forms = |f: &mut fmt::Formatter<'_>, source: &Repository| {
            write!(
                f,
                "write {component}=TAG, {component}=@sha256:DIGEST or {component}={source}:TAG"
            )
        };
        match &self.problem {
            SourceProblem::NotAllowed { source, also_from } => {
                write!(f, "{component} comes only from {source}")?;
                if !also_from.is_empty() {
                    let others: Vec<String> = also_from.iter().map(ToString::to_string).collect();
                    write!(f, " (or {})", others.join(", "))?;
                }
                f.write_str(": ")?;
                forms(f, source)?;
                f.write_str(
                    "; other repositories need `also_from:` on the component in the project file",
                )
            }
            SourceProblem::NoVersion { source } => {
                write!(
                    f,
                    "{component}: name a tag or a digest, never latest by default: "
                )?;
                forms(f, source)
            }
            SourceProblem::Malformed(reason) => write!(f, "{component}: {reason}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// What a person or CI wrote for one component of a release, read for its form alone:
/// no project is needed, so the CLI checks it before it asks the server, and
/// [`Component::release_reference`] then applies the component's rules to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseSource {
    /// `oci:…`: an OCI layout on disk, which a release never takes.
    Layout,
    /// `TAG`, `@DIGEST` or `TAG@DIGEST` (or nothing at all): in the component's own
    /// source repository.
    Own {
        tag: Option<Tag>,
        digest: Option<Digest>,
    },
    /// `HOST/PATH:TAG`, `HOST/PATH@DIGEST` (or `HOST/PATH`, which the reference parser
    /// reads as `latest`: then `explicit_tag` is false).
    Repository {
        reference: RegistryReference,
        explicit_tag: bool,
    },
}

impl FromStr for ReleaseSource {
    /// Why the text is not a reference at all, naming the part.
    type Err = String;

    fn from_str(text: &str) -> Result<ReleaseSource, String> {
        if text.starts_with("oci:") {
            return Ok(ReleaseSource::Layout);
        }
        let (name, digest) = match text.rsplit_once('@') {
            Some((name, digest)) => (
                name,
                Some(digest.parse::<Digest>().map_err(|e| e.to_string())?),
            ),
            None => (text, None),
        };
        if !name.contains(['/', ':']) {
            let tag = match name {
                "" => None,
                tag => Some(
                    tag.parse::<Tag>()
                        .map_err(|reason| format!("tag {tag:?} {reason}"))?,
                ),
            };
            return Ok(ReleaseSource::Own { tag, digest });
        }
        let reference: RegistryReference = text
            .parse()
            .map_err(|e: crate::ReferenceError| e.to_string())?;
        // The parser reads a bare repository as `latest`; a tag is explicit only when
        // the last path segment carries one.
        let explicit_tag = name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
        Ok(ReleaseSource::Repository {
            reference,
            explicit_tag,
        })
    }
}

impl Component {
    /// The registry reference a release takes this component from, given what a person
    /// or CI wrote for it:
    /// - `TAG`, `@DIGEST` or `TAG@DIGEST`: in the component's source repository;
    /// - `HOST/PATH:TAG`, `HOST/PATH@DIGEST`: in the source or an `also_from` repository.
    ///
    /// Decided from the text alone: nothing is dialled or opened. A reference without a
    /// tag or digest is refused rather than read as `latest`.
    pub fn release_reference(&self, text: &str) -> Result<RegistryReference, SourceError> {
        let fail = |problem| SourceError {
            component: self.name.clone(),
            problem,
        };
        let not_allowed = || {
            fail(SourceProblem::NotAllowed {
                source: self.source.clone(),
                also_from: self.also_from.clone(),
            })
        };
        let no_version = || {
            fail(SourceProblem::NoVersion {
                source: self.source.clone(),
            })
        };
        match text
            .parse::<ReleaseSource>()
            .map_err(|reason| fail(SourceProblem::Malformed(reason)))?
        {
            ReleaseSource::Layout => Err(not_allowed()),
            ReleaseSource::Own {
                tag: None,
                digest: None,
            } => Err(no_version()),
            ReleaseSource::Own { tag, digest } => Ok(RegistryReference::new(
                self.source.registry(),
                self.source.path(),
                tag,
                digest,
            )),
            ReleaseSource::Repository {
                reference,
                explicit_tag,
            } => {
                let (registry, path) = (reference.registry(), reference.repository());
                let allowed = (registry == self.source.registry() && path == self.source.path())
                    || self.also_from.iter().any(|p| p.matches(registry, path));
                if !allowed {
                    Err(not_allowed())
                } else if !explicit_tag && reference.digest().is_none() {
                    Err(no_version())
                } else {
                    Ok(reference)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(also_from: &[&str]) -> Component {
        Component {
            name: "api".parse().unwrap(),
            source: "reg.dev:5000/payments/api".parse().unwrap(),
            also_from: also_from.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    const DIGEST: &str = "sha256:4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a";

    #[test]
    fn allowed_forms_resolve_inside_the_component_repositories() {
        let api = component(&["reg.dev:5000/payments/api-pr-*", "reg.other/x/*/api"]);
        for (text, expect) in [
            ("1.4.2", "reg.dev:5000/payments/api:1.4.2".to_owned()),
            (
                &format!("@{DIGEST}"),
                format!("reg.dev:5000/payments/api@{DIGEST}"),
            ),
            (
                &format!("v1@{DIGEST}"),
                format!("reg.dev:5000/payments/api:v1@{DIGEST}"),
            ),
            (
                "reg.dev:5000/payments/api:sha-1",
                "reg.dev:5000/payments/api:sha-1".to_owned(),
            ),
            (
                &format!("reg.dev:5000/payments/api@{DIGEST}"),
                format!("reg.dev:5000/payments/api@{DIGEST}"),
            ),
            (
                "reg.dev:5000/payments/api-pr-17:sha-1",
                "reg.dev:5000/payments/api-pr-17:sha-1".to_owned(),
            ),
            (
                "reg.other/x/team/api:1",
                "reg.other/x/team/api:1".to_owned(),
            ),
        ] {
            let reference = api.release_reference(text);
            assert_eq!(reference.map(|r| r.to_string()), Ok(expect), "{text}");
        }
    }

    #[test]
    fn everything_outside_gets_one_refusal() {
        let api = component(&["reg.dev:5000/payments/api-pr-*"]);
        let refusal = "api comes only from reg.dev:5000/payments/api (or reg.dev:5000/payments/api-pr-*): write api=TAG, api=@sha256:DIGEST or api=reg.dev:5000/payments/api:TAG; other repositories need `also_from:` on the component in the project file";
        for text in [
            "oci:/etc:x",
            "oci:/nonexistent:x",
            "oci:",
            "reg.dev:5000/other-team/secret:v1",
            "reg.dev:5000/payments/api-pr-1/nested:v1",
            "reg.dev:5001/payments/api:v1",
            "REG.dev:5000/payments/api:v1",
            "attacker.example/payments/api:v1",
            "alpine:3",
            "docker://reg.dev:5000/other:v1",
        ] {
            let error = api.release_reference(text).unwrap_err();
            assert_eq!(error.to_string(), refusal, "{text}");
        }
        let malformed = api
            .release_reference("reg.dev:5000/payments/api/../secret:v1")
            .unwrap_err();
        assert!(
            matches!(malformed.problem, SourceProblem::Malformed(_)),
            "{malformed}"
        );
    }

    #[test]
    fn no_latest_by_default() {
        let api = component(&[]);
        for text in ["reg.dev:5000/payments/api", ""] {
            assert_eq!(
                api.release_reference(text).unwrap_err().to_string(),
                "api: name a tag or a digest, never latest by default: write api=TAG, api=@sha256:DIGEST or api=reg.dev:5000/payments/api:TAG",
                "{text:?}"
            );
        }
        assert!(
            api.release_reference("bad tag")
                .unwrap_err()
                .to_string()
                .starts_with("api: tag \"bad tag\"")
        );
    }

    #[test]
    fn release_sources_are_read_for_their_form_alone() {
        for text in [
            "1.4.2",
            &format!("@{DIGEST}"),
            &format!("v1@{DIGEST}"),
            "",
            "oci:/anything at all",
            "reg.dev:5000/payments/api",
            "other.example/team/secret:v1",
            "alpine:3",
        ] {
            assert!(text.parse::<ReleaseSource>().is_ok(), "{text:?}");
        }
        for (text, reason) in [
            (
                "@sha256:abc",
                "digest \"sha256:abc\" must have 64 hex digits",
            ),
            ("v1@sha256:XYZ", "digest \"sha256:XYZ\" must be lower-case"),
            ("bad tag", "tag \"bad tag\" "),
            ("reg.dev/Team/api:v1", "must be lower case"),
            ("reg.dev:5000/payments/api/../secret:v1", ".."),
            ("reg.dev/api@sha256:abc", "digest \"sha256:abc\" must have"),
        ] {
            let error = text.parse::<ReleaseSource>().unwrap_err();
            assert!(error.contains(reason), "{text:?}: {error}");
        }
    }

    #[test]
    fn patterns_name_their_host() {
        for (text, expect) in [
            ("reg.dev/team/api-*", Ok("reg.dev/team/api-*")),
            ("docker.io/acme-*", Ok("docker.io/library/acme-*")),
            ("localhost:5000/*/api", Ok("localhost:5000/*/api")),
            ("team/api", Err("must be a registry host")),
            ("*.dev/team/api", Err("must be a registry host")),
            ("api", Err("names no host")),
            ("reg.dev/team/api:v1", Err("names a tag or digest")),
            ("reg.dev/Team/*", Err("lower case")),
        ] {
            let parsed = text.parse::<RepositoryPattern>().map(|p| p.to_string());
            match (parsed, expect) {
                (Ok(parsed), Ok(expect)) => assert_eq!(parsed, expect),
                (Err(error), Err(expect)) => assert!(error.contains(expect), "{text}: {error}"),
                (parsed, expect) => panic!("{text}: {parsed:?}, expected {expect:?}"),
            }
        }
        let pattern: RepositoryPattern = "reg.dev/team/api-*".parse().unwrap();
        assert!(pattern.matches("reg.dev", "team/api-pr-1"));
        assert!(!pattern.matches("reg.dev", "team/api-pr-1/x"));
        assert!(!pattern.matches("reg.dev", "team/api"));
        assert!(!pattern.matches("reg.dev:443", "team/api-1"));
    }
}
