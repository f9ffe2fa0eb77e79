//! The `watch:` section: which pushes to a component's source repository make a new
//! release. A tag matches a glob (`*` is any run of characters) or a semver range
//! (a leading `v` is allowed: `v1.4.2` is 1.4.2).
//!
//! ```yaml
//! watch:
//!   api: {tags: "main-*"}                  # a glob
//!   worker: {semver: ">=1.2.0, <2", poll: 1m}   # or a semver range; poll: see below
//! ```
//!
//! Pushes arrive as registry notifications (`POST /api/v1/events/registry`). For
//! registries that cannot send them, `poll:` lists the repository's tags at that
//! interval (at least 1 s): a tag not seen before that the rule admits is a push. At
//! the first look only the highest admitted version counts (semver rules; glob rules
//! take none), so starting Gantry does not release a repository's history. A tag moved
//! to another digest is noticed by events only.

use std::collections::{BTreeMap, HashMap};

use gantry_core::{Name, glob};
use marked_yaml::Spanned;
use serde::Deserialize;

use super::{Converter, start};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WatchWire {
    #[serde(default)]
    tags: Option<Spanned<String>>,
    #[serde(default)]
    semver: Option<Spanned<String>>,
    #[serde(default)]
    poll: Option<Spanned<String>>,
}

pub(super) type WatchesWire = HashMap<Spanned<String>, Spanned<WatchWire>>;

/// A component's watch: which tags make a release, and how often to look when the
/// registry sends no events.
#[derive(Debug, Clone)]
pub struct Watch {
    pub rule: TagRule,
    pub poll: Option<std::time::Duration>,
}

/// Which tags of a component's source make a release.
#[derive(Debug, Clone)]
pub enum TagRule {
    Glob(String),
    Semver(semver::VersionReq),
}

impl TagRule {
    pub fn matches(&self, tag: &str) -> bool {
        match self {
            TagRule::Glob(pattern) => glob(pattern, tag),
            TagRule::Semver(range) => semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag))
                .is_ok_and(|version| range.matches(&version)),
        }
    }
}

impl std::fmt::Display for TagRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagRule::Glob(pattern) => write!(f, "tags {pattern:?}"),
            TagRule::Semver(range) => write!(f, "semver {range}"),
        }
    }
}

impl Converter<'_> {
    pub(super) fn watches(
        &mut self,
        wire: WatchesWire,
        components: &[Name],
    ) -> BTreeMap<Name, Watch> {
        let mut watches = BTreeMap::new();
        let mut entries: Vec<_> = wire.into_iter().collect();
        entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (component, rule) in entries {
            let Some(name) = components.iter().find(|c| c.as_str() == component.as_str()) else {
                self.error(
                    start(&component),
                    format!(
                        "watch: unknown component {:?} (components: {})",
                        component.as_str(),
                        components
                            .iter()
                            .map(Name::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            };
            let tag_rule = match (&rule.tags, &rule.semver) {
                (Some(glob), None) if !glob.trim().is_empty() => {
                    TagRule::Glob(glob.as_str().to_owned())
                }
                (None, Some(range)) => match semver::VersionReq::parse(range.as_str()) {
                    Ok(range) => TagRule::Semver(range),
                    Err(e) => {
                        self.error(
                            start(range),
                            format!("watch.{name}.semver {:?}: {e}", range.as_str()),
                        );
                        continue;
                    }
                },
                _ => {
                    self.error(
                        start(&rule),
                        format!(
                            "watch.{name}: give exactly one of tags (a glob such as \"v*\") or semver (a range such as \">=1.2, <2\")"
                        ),
                    );
                    continue;
                }
            };
            let rule_poll = rule.poll.as_ref().and_then(|text| {
                let duration = self.duration(text)?;
                match std::time::Duration::try_from(duration) {
                    Ok(poll) if poll >= std::time::Duration::from_secs(1) => Some(poll),
                    _ => {
                        self.error(
                            start(text),
                            format!(
                                "watch.{name}.poll {:?}: poll at most once a second",
                                text.as_str()
                            ),
                        );
                        None
                    }
                }
            });
            watches.insert(
                name.clone(),
                Watch {
                    rule: tag_rule,
                    poll: rule_poll,
                },
            );
        }
        watches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_tags() {
        let glob = TagRule::Glob("main-*".to_owned());
        assert!(glob.matches("main-4f2c1e9"));
        assert!(glob.matches("main-"));
        assert!(!glob.matches("feature-main-1"));
        assert!(TagRule::Glob("*-rc*".to_owned()).matches("1.2-rc3"));
        assert!(!TagRule::Glob("a*b".to_owned()).matches("ab-"));
        assert!(TagRule::Glob("exact".to_owned()).matches("exact"));
        let range = TagRule::Semver(semver::VersionReq::parse(">=1.2.0, <2").unwrap());
        assert!(range.matches("1.4.2"));
        assert!(range.matches("v1.2.0"));
        assert!(!range.matches("2.0.0"));
        assert!(
            !range.matches("1.3.0-rc.1"),
            "pre-releases only when the range names one"
        );
        assert!(!range.matches("latest"));
    }
}
