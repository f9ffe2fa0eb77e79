//! The `components:` section: each component's source repository and, when a project
//! allows it, the other repositories its releases may come from.
//!
//! ```yaml
//! components:
//!   api: registry.dev.example/payments/api      # releases come from here only
//!   worker:
//!     source: registry.dev.example/payments/worker
//!     also_from:                                # and from these, explicitly
//!       - registry.dev.example/payments/worker-hotfix
//!       - registry.dev.example/payments/pr-*/worker   # `*` inside one path segment
//! ```
//!
//! A release names each component as `TAG`, `@DIGEST` (both in `source`) or
//! `HOST/PATH:TAG` / `HOST/PATH@DIGEST` in `source` or an `also_from` repository;
//! anything else, OCI layouts included, is refused before anything is dialled.
//! Registry pushes are watched in `source` only.

use std::fmt;

use gantry_core::{Component, Repository, RepositoryPattern};
use marked_yaml::{Marker, Spanned};
use serde::Deserialize;

use super::{Converter, start};

/// `api: HOST/PATH` or `api: {source: HOST/PATH, also_from: [PATTERN, …]}`.
pub(super) enum ComponentWire {
    Source(String),
    Full {
        source: Spanned<String>,
        also_from: Vec<Spanned<String>>,
    },
}

const FIELDS: &[&str] = &["source", "also_from"];

impl<'de> Deserialize<'de> for ComponentWire {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ComponentWire, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ComponentWire;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a repository (host/path) or {source: host/path, also_from: [...]}")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<ComponentWire, E> {
                Ok(ComponentWire::Source(value.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ComponentWire, A::Error> {
                let (mut source, mut also_from) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        // The loader refuses a key given twice before this runs.
                        "source" => source = Some(map.next_value()?),
                        "also_from" => also_from = Some(map.next_value()?),
                        other => return Err(serde::de::Error::unknown_field(other, FIELDS)),
                    }
                }
                Ok(ComponentWire::Full {
                    source: source.ok_or_else(|| serde::de::Error::missing_field("source"))?,
                    also_from: also_from.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Converter<'_> {
    fn repository_at(
        &mut self,
        marker: Option<Marker>,
        what: &str,
        text: &str,
    ) -> Option<Repository> {
        text.parse()
            .map_err(|e: String| self.error(marker, format!("{what}: {e}")))
            .ok()
    }

    /// A component from its entry; each mistake is reported where it was written.
    pub(super) fn component(
        &mut self,
        name: &Spanned<String>,
        wire: &Spanned<ComponentWire>,
    ) -> Option<Component> {
        let name = self.name("component", name);
        let (source, also_from) = match &**wire {
            ComponentWire::Source(text) => (
                self.repository_at(start(wire), "component source", text),
                Vec::new(),
            ),
            ComponentWire::Full { source, also_from } => {
                let source = self.repository("component source", source);
                let patterns = also_from
                    .iter()
                    .filter_map(|text| match text.parse::<RepositoryPattern>() {
                        Ok(pattern) => Some(pattern),
                        Err(e) => {
                            self.error(start(text), format!("also_from: {e}"));
                            None
                        }
                    })
                    .collect::<Vec<_>>();
                if patterns.len() != also_from.len() {
                    return None;
                }
                (source, patterns)
            }
        };
        Some(Component {
            name: name?,
            source: source?,
            also_from,
        })
    }
}
