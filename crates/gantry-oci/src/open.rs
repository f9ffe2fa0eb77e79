//! Turning references and credentials into repositories to read from and write to.

use std::path::Path;

use gantry_core::{Reference, RegistryReference};

use crate::auth::{CredentialSources, Credentials};
use crate::client::Client;
use crate::error::Result;
use crate::layout::LayoutRepository;
use crate::registry::RegistryRepository;
use crate::repository::Repository;

/// A reference and, optionally, the credentials given for it on the command line.
/// Without them, the standard auth files are consulted.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub reference: Reference,
    pub credentials: Option<Credentials>,
}

impl Endpoint {
    pub fn new(reference: Reference) -> Endpoint {
        Endpoint {
            reference,
            credentials: None,
        }
    }

    #[must_use]
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Endpoint {
        self.credentials = credentials;
        self
    }
}

/// Everything needed to reach registries: the HTTP client and where credentials live.
#[derive(Debug, Clone)]
pub struct Registries {
    pub(crate) client: Client,
    pub(crate) credential_sources: CredentialSources,
}

/// What a repository is opened for; decides the token scopes asked for.
pub(crate) enum Role<'a> {
    Pull,
    /// Push, and pull from `mount_from` (a repository of the same registry) if given.
    Push {
        mount_from: Option<&'a str>,
    },
}

impl Registries {
    pub fn new(client: Client, credential_sources: CredentialSources) -> Registries {
        Registries {
            client,
            credential_sources,
        }
    }

    fn credentials_for(
        &self,
        reference: &RegistryReference,
        given: Option<&Credentials>,
    ) -> Result<Option<Credentials>> {
        match given {
            Some(credentials) => Ok(Some(credentials.clone())),
            None => self.credential_sources.lookup(reference.registry()),
        }
    }

    pub(crate) fn open_registry(
        &self,
        reference: &RegistryReference,
        credentials: Option<&Credentials>,
        role: &Role<'_>,
    ) -> Result<RegistryRepository> {
        let credentials = self.credentials_for(reference, credentials)?;
        let name = reference.repository();
        let scopes = match role {
            Role::Pull => vec![format!("repository:{name}:pull")],
            Role::Push { mount_from } => {
                let mut scopes = vec![format!("repository:{name}:pull,push")];
                if let Some(from) = mount_from.filter(|from| *from != name) {
                    scopes.push(format!("repository:{from}:pull"));
                }
                scopes
            }
        };
        Ok(RegistryRepository {
            session: self
                .client
                .session(reference.registry(), credentials, scopes),
            name: name.to_owned(),
        })
    }

    pub(crate) fn open(&self, endpoint: &Endpoint, role: &Role<'_>) -> Result<Repository> {
        match &endpoint.reference {
            Reference::Registry(reference) => self
                .open_registry(reference, endpoint.credentials.as_ref(), role)
                .map(Repository::Registry),
            Reference::Layout(layout) => {
                let path = Path::new(layout.path());
                match role {
                    Role::Pull => LayoutRepository::open(path),
                    Role::Push { .. } => LayoutRepository::create(path),
                }
                .map(Repository::Layout)
            }
        }
    }
}
