use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Where an artifact lives: in a registry, or in an OCI image layout on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Registry(RegistryReference),
    Layout(LayoutReference),
}

/// `host[:port]/repository[:tag][@digest]`, normalised the way Docker does:
/// `alpine` is `docker.io/library/alpine:latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryReference {
    registry: String,
    repository: String,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

/// `oci:DIR[:tag][@digest]`: an OCI image layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutReference {
    path: String,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

/// The part of a reference a [`ReferenceError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferencePart {
    Registry,
    Repository,
    Tag,
    Digest,
    Path,
}

impl fmt::Display for ReferencePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReferencePart::Registry => "registry",
            ReferencePart::Repository => "repository",
            ReferencePart::Tag => "tag",
            ReferencePart::Digest => "digest",
            ReferencePart::Path => "layout path",
        })
    }
}

/// Why a string is not a reference; names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {input:?}: {part} {value:?} {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub part: ReferencePart,
    pub value: String,
    pub reason: String,
}

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LENGTH: usize = 255;
const MAX_TAG_LENGTH: usize = 128;

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = String;

    /// Checks a tag; the error is the reason, for the caller to put in context.
    fn from_str(text: &str) -> Result<Tag, String> {
        let mut chars = text.chars();
        match chars.next() {
            None => return Err("must not be empty".to_owned()),
            Some(first) if !(first.is_ascii_alphanumeric() || first == '_') => {
                return Err("must start with a letter, digit or '_'".to_owned());
            }
            Some(_) => {}
        }
        if let Some(bad) =
            chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(format!(
                "must contain only letters, digits, '_', '.' or '-', found {bad:?}"
            ));
        }
        if text.len() > MAX_TAG_LENGTH {
            return Err(format!("is longer than {MAX_TAG_LENGTH} characters"));
        }
        Ok(Tag(text.to_owned()))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Reference {
    pub fn tag(&self) -> Option<&Tag> {
        match self {
            Reference::Registry(r) => r.tag.as_ref(),
            Reference::Layout(l) => l.tag.as_ref(),
        }
    }

    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Reference::Registry(r) => r.digest.as_ref(),
            Reference::Layout(l) => l.digest.as_ref(),
        }
    }
}

impl RegistryReference {
    /// Builds a reference from parts that are already valid, e.g. to name a digest
    /// in the same repository as another reference.
    pub fn new(registry: &str, repository: &str, tag: Option<Tag>, digest: Option<Digest>) -> Self {
        RegistryReference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        }
    }

    /// `host[:port]`, with Docker Hub as `docker.io`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
}

impl LayoutReference {
    pub fn new(path: &str, tag: Option<Tag>, digest: Option<Digest>) -> Self {
        LayoutReference {
            path: path.to_owned(),
            tag,
            digest,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Reference, ReferenceError> {
        if let Some(rest) = input.strip_prefix("oci:") {
            return parse_layout(input, rest).map(Reference::Layout);
        }
        // `docker://` is how skopeo spells a registry reference; accept it so
        // existing promotion scripts translate word for word.
        let rest = input.strip_prefix("docker://").unwrap_or(input);
        parse_registry(input, rest).map(Reference::Registry)
    }
}

impl FromStr for RegistryReference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<RegistryReference, ReferenceError> {
        match input.parse()? {
            Reference::Registry(reference) => Ok(reference),
            Reference::Layout(_) => Err(error(
                input,
                ReferencePart::Registry,
                "oci:",
                "is not allowed here: this needs a registry reference",
            )),
        }
    }
}

fn error(
    input: &str,
    part: ReferencePart,
    value: &str,
    reason: impl Into<String>,
) -> ReferenceError {
    ReferenceError {
        input: input.to_owned(),
        part,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Splits `name[:tag][@digest]` into its parts; `name` may itself contain ':' (a port)
/// or '/' (a path), so the tag is only what follows the last ':' after the last '/'.
fn split_tag_and_digest<'a>(
    input: &str,
    text: &'a str,
) -> Result<(&'a str, Option<Tag>, Option<Digest>), ReferenceError> {
    let (rest, digest) = match text.rsplit_once('@') {
        Some((rest, digest)) => {
            let parsed = digest.parse::<Digest>().map_err(|e: DigestError| {
                error(
                    input,
                    ReferencePart::Digest,
                    digest,
                    e.problem().to_string(),
                )
            })?;
            (rest, Some(parsed))
        }
        None => (text, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            let tag = &rest[colon + 1..];
            let parsed = tag
                .parse::<Tag>()
                .map_err(|reason| error(input, ReferencePart::Tag, tag, reason))?;
            (&rest[..colon], Some(parsed))
        }
        None => (rest, None),
    };
    Ok((name, tag, digest))
}

fn parse_layout(input: &str, text: &str) -> Result<LayoutReference, ReferenceError> {
    let (path, tag, digest) = split_tag_and_digest(input, text)?;
    if path.is_empty() {
        return Err(error(
            input,
            ReferencePart::Path,
            path,
            "must not be empty: write oci:DIR[:tag][@digest]",
        ));
    }
    Ok(LayoutReference::new(path, tag, digest))
}

fn parse_registry(input: &str, text: &str) -> Result<RegistryReference, ReferenceError> {
    if text.is_empty() {
        return Err(error(
            input,
            ReferencePart::Repository,
            text,
            "must not be empty",
        ));
    }
    let (name, tag, digest) = split_tag_and_digest(input, text)?;
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest)) if looks_like_registry(first) => (first.to_owned(), rest.to_owned()),
        _ => (DOCKER_HUB.to_owned(), name.to_owned()),
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        _ => registry,
    };
    check_registry(input, &registry)?;
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    check_repository(input, &repository)?;
    let tag = match (tag, &digest) {
        (None, None) => Some(Tag(DEFAULT_TAG.to_owned())),
        (tag, _) => tag,
    };
    Ok(RegistryReference {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Docker's rule: the first path component names a registry when it has a '.' or a
/// ':' or is `localhost`; otherwise the whole name is a Docker Hub repository.
fn looks_like_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[')
}

fn check_registry(input: &str, registry: &str) -> Result<(), ReferenceError> {
    let fail = |reason: &str| Err(error(input, ReferencePart::Registry, registry, reason));
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return fail("has an unclosed '[' in its IPv6 address");
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return fail("has an invalid IPv6 address");
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return fail("has text after the IPv6 address that is not a :port"),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return fail("has a port that is not a number from 1 to 65535");
        }
    }
    if registry.starts_with('[') {
        return Ok(());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.is_empty() || !host.split('.').all(label_ok) {
        return fail("is not a valid host name: use letters, digits, '-' and '.'");
    }
    Ok(())
}

/// Path components are `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`,
/// separated by '/'; the whole name is at most 255 characters.
fn check_repository(input: &str, repository: &str) -> Result<(), ReferenceError> {
    let fail = |reason: String| Err(error(input, ReferencePart::Repository, repository, reason));
    if repository.len() > MAX_NAME_LENGTH {
        return fail(format!("is longer than {MAX_NAME_LENGTH} characters"));
    }
    if let Some(upper) = repository.chars().find(char::is_ascii_uppercase) {
        return fail(format!("must be lower case, found {upper:?}"));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return fail("has an empty path component".to_owned());
        }
        if let Some(bad) = component.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        }) {
            return fail(format!(
                "must contain only a-z, 0-9, '.', '_', '-' and '/', found {bad:?}"
            ));
        }
        if !valid_component(component) {
            return fail(format!(
                "has path component {component:?}, which must start and end with a letter or digit and use '.', '_', '__' or '-' only between them"
            ));
        }
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Separators: one '.', one '_', exactly "__", or any run of '-'.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

impl fmt::Display for RegistryReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Display for LayoutReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci:{}", self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Registry(r) => r.fmt(f),
            Reference::Layout(l) => l.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// Parses `input` and shows the result in one line: the canonical form, or the error.
    fn check(input: &str, expect: &str) {
        let got = match input.parse::<Reference>() {
            Ok(Reference::Registry(r)) => format!(
                "registry={} repository={} tag={} digest={}",
                r.registry(),
                r.repository(),
                r.tag().map_or("-", Tag::as_str),
                r.digest().map_or("-", Digest::as_str),
            ),
            Ok(Reference::Layout(l)) => format!(
                "layout={} tag={} digest={}",
                l.path(),
                l.tag().map_or("-", Tag::as_str),
                l.digest().map_or("-", Digest::as_str),
            ),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "input {input:?}");
    }

    #[test]
    fn docker_hub_normalisation() {
        check(
            "alpine",
            "registry=docker.io repository=library/alpine tag=latest digest=-",
        );
        check(
            "alpine:3.20",
            "registry=docker.io repository=library/alpine tag=3.20 digest=-",
        );
        check(
            "bitnami/redis",
            "registry=docker.io repository=bitnami/redis tag=latest digest=-",
        );
        check(
            "docker.io/alpine",
            "registry=docker.io repository=library/alpine tag=latest digest=-",
        );
        check(
            "index.docker.io/library/alpine",
            "registry=docker.io repository=library/alpine tag=latest digest=-",
        );
        check(
            "docker://alpine",
            "registry=docker.io repository=library/alpine tag=latest digest=-",
        );
    }

    #[test]
    fn registries_ports_and_digests() {
        check(
            "localhost/app",
            "registry=localhost repository=app tag=latest digest=-",
        );
        check(
            "127.0.0.1:5000/team/app:v1",
            "registry=127.0.0.1:5000 repository=team/app tag=v1 digest=-",
        );
        check(
            &format!("ghcr.io/org/app@sha256:{HEX}"),
            &format!("registry=ghcr.io repository=org/app tag=- digest=sha256:{HEX}"),
        );
        check(
            &format!("reg.example:443/a/b/c:v1.2_x-y@sha256:{HEX}"),
            &format!("registry=reg.example:443 repository=a/b/c tag=v1.2_x-y digest=sha256:{HEX}"),
        );
        check(
            "[::1]:5000/app:v1",
            "registry=[::1]:5000 repository=app tag=v1 digest=-",
        );
        check(
            "registry.dev/my__app/a-b--c/x.y:t",
            "registry=registry.dev repository=my__app/a-b--c/x.y tag=t digest=-",
        );
    }

    #[test]
    fn layouts() {
        check("oci:/tmp/layout", "layout=/tmp/layout tag=- digest=-");
        check("oci:build/out:v1", "layout=build/out tag=v1 digest=-");
        check(
            &format!("oci:./dir:v1@sha256:{HEX}"),
            &format!("layout=./dir tag=v1 digest=sha256:{HEX}"),
        );
        check(
            "oci:",
            "error: invalid reference \"oci:\": layout path \"\" must not be empty: write oci:DIR[:tag][@digest]",
        );
    }

    #[test]
    fn errors_name_the_part() {
        check(
            "Alpine",
            "error: invalid reference \"Alpine\": repository \"library/Alpine\" must be lower case, found 'A'",
        );
        check(
            "ghcr.io/Org/app",
            "error: invalid reference \"ghcr.io/Org/app\": repository \"Org/app\" must be lower case, found 'O'",
        );
        check(
            "app:",
            "error: invalid reference \"app:\": tag \"\" must not be empty",
        );
        check(
            "app:-x",
            "error: invalid reference \"app:-x\": tag \"-x\" must start with a letter, digit or '_'",
        );
        check(
            "app@sha256:abc",
            "error: invalid reference \"app@sha256:abc\": digest \"sha256:abc\" must have 64 hex digits after `sha256:`, found 3",
        );
        check(
            "app@md5:abc",
            "error: invalid reference \"app@md5:abc\": digest \"md5:abc\" uses algorithm \"md5\", which is not supported: use sha256 or sha512",
        );
        check(
            "host:99999/app",
            "error: invalid reference \"host:99999/app\": registry \"host:99999\" has a port that is not a number from 1 to 65535",
        );
        check(
            "bad_host.io/app",
            "error: invalid reference \"bad_host.io/app\": registry \"bad_host.io\" is not a valid host name: use letters, digits, '-' and '.'",
        );
        check(
            "reg.io/a//b",
            "error: invalid reference \"reg.io/a//b\": repository \"a//b\" has an empty path component",
        );
        check(
            "reg.io/a/-b",
            "error: invalid reference \"reg.io/a/-b\": repository \"a/-b\" has path component \"-b\", which must start and end with a letter or digit and use '.', '_', '__' or '-' only between them",
        );
        check(
            "reg.io/a/b___c",
            "error: invalid reference \"reg.io/a/b___c\": repository \"a/b___c\" has path component \"b___c\", which must start and end with a letter or digit and use '.', '_', '__' or '-' only between them",
        );
        check(
            "reg.io/a b",
            "error: invalid reference \"reg.io/a b\": repository \"a b\" must contain only a-z, 0-9, '.', '_', '-' and '/', found ' '",
        );
        check(
            "",
            "error: invalid reference \"\": repository \"\" must not be empty",
        );
        let long = "a".repeat(300);
        check(
            &format!("reg.io/{long}"),
            &format!(
                "error: invalid reference \"reg.io/{long}\": repository \"{long}\" is longer than 255 characters"
            ),
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "docker.io/library/alpine:latest",
            "127.0.0.1:5000/a/b:v1",
            "oci:/x/y:v2",
        ] {
            assert_eq!(text.parse::<Reference>().unwrap().to_string(), text);
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn component() -> impl Strategy<Value = String> {
            "[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}"
        }

        fn registry() -> impl Strategy<Value = String> {
            (
                "[a-z][a-z0-9-]{0,10}[a-z0-9]\\.[a-z]{2,6}",
                proptest::option::of(1u16..),
            )
                .prop_map(|(host, port)| port.map_or(host.clone(), |p| format!("{host}:{p}")))
        }

        proptest! {
            /// Every canonical reference prints back to itself, and its parts survive.
            #[test]
            fn canonical_references_round_trip(
                registry in registry(),
                path in proptest::collection::vec(component(), 1..4),
                tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
                hex in proptest::option::of("[0-9a-f]{64}"),
            ) {
                let repository = path.join("/");
                let mut text = format!("{registry}/{repository}");
                if let Some(tag) = &tag { text.push(':'); text.push_str(tag); }
                if let Some(hex) = &hex { text.push_str("@sha256:"); text.push_str(hex); }
                let parsed: RegistryReference = text.parse().unwrap();
                prop_assert_eq!(parsed.registry(), registry.as_str());
                prop_assert_eq!(parsed.repository(), repository.as_str());
                prop_assert_eq!(parsed.digest().map(|d| d.hex().to_owned()), hex.clone());
                let expected_tag = match (&tag, &hex) { (None, None) => Some("latest".to_owned()), _ => tag.clone() };
                prop_assert_eq!(parsed.tag().map(|t| t.as_str().to_owned()), expected_tag);
                let shown = parsed.to_string();
                prop_assert_eq!(shown.parse::<RegistryReference>().unwrap(), parsed);
            }

            /// Parsing never panics, whatever the input, and an error always names a part.
            #[test]
            fn arbitrary_input_never_panics(input in "\\PC{0,80}") {
                if let Err(error) = input.parse::<Reference>() {
                    prop_assert!(error.to_string().starts_with("invalid reference"));
                }
            }
        }
    }
}
