//! Who may do what: principals, roles, grants and the one rule that decides.
//!
//! A principal is a person (`alice`) or a service account (`service:payments-ci`).
//! A grant gives one role to one principal over the whole server, one project, or one
//! environment of a project. An action is allowed when some grant's role allows it and
//! its scope covers where the action happens.

use std::fmt;
use std::str::FromStr;

use crate::Name;

/// Who a request acts for. Users print bare (`alice`) so approvals and the ledger read
/// naturally; service accounts carry a prefix (`service:payments-ci`), so the two can
/// never be confused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    User(Name),
    Service(Name),
}

impl Principal {
    pub fn name(&self) -> &Name {
        match self {
            Principal::User(name) | Principal::Service(name) => name,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(name) => write!(f, "{name}"),
            Principal::Service(name) => write!(f, "service:{name}"),
        }
    }
}

/// Why a string is not a principal, a role or a grant scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AccessError(String);

impl FromStr for Principal {
    type Err = AccessError;

    /// `alice` or `user:alice` for a person, `service:ci` for a service account.
    fn from_str(text: &str) -> Result<Principal, AccessError> {
        let (kind, name) = text.split_once(':').unwrap_or(("user", text));
        let name = name
            .parse::<Name>()
            .map_err(|e| AccessError(format!("principal {text:?}: the name {e}")))?;
        match kind {
            "user" => Ok(Principal::User(name)),
            "service" => Ok(Principal::Service(name)),
            other => Err(AccessError(format!(
                "principal {text:?}: unknown kind {other:?}; write a user as NAME or user:NAME, a service account as service:NAME"
            ))),
        }
    }
}

/// What a grant lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads releases, promotions, evidence, decisions, status and the ledger.
    Viewer,
    /// Viewer, and creates releases, adds evidence, promotes, rolls back, cancels, holds.
    Promoter,
    /// Viewer, and approves or rejects releases.
    Approver,
    /// Everything, including stopping the line, tokens and grants.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Promoter, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Promoter => "promoter",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Promoter => matches!(action, Action::View | Action::Promote),
            Role::Approver => matches!(action, Action::View | Action::Approve),
            Role::Viewer => action == Action::View,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccessError;

    fn from_str(text: &str) -> Result<Role, AccessError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| {
                AccessError(format!(
                    "unknown role {text:?}; the roles are viewer, promoter, approver and admin"
                ))
            })
    }
}

/// The kinds of things a request does; each route needs one, somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    View,
    Promote,
    Approve,
    Administer,
}

impl Action {
    /// The least role that allows it, for messages.
    pub fn least_role(self) -> Role {
        match self {
            Action::View => Role::Viewer,
            Action::Promote => Role::Promoter,
            Action::Approve => Role::Approver,
            Action::Administer => Role::Admin,
        }
    }
}

/// Where an action happens, or what a grant covers: the server as a whole, a project,
/// or one environment of a project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Server,
    Project(Name),
    Environment(Name, Name),
}

impl Scope {
    /// Whether a grant over `self` covers an action at `place`: the server covers
    /// everything, a project its environments, an environment itself.
    pub fn covers(&self, place: &Scope) -> bool {
        match (self, place) {
            (Scope::Server, _) => true,
            (Scope::Project(p), Scope::Project(q) | Scope::Environment(q, _)) => p == q,
            (Scope::Environment(p, e), Scope::Environment(q, f)) => p == q && e == f,
            _ => false,
        }
    }

    pub fn project(&self) -> Option<&Name> {
        match self {
            Scope::Server => None,
            Scope::Project(project) | Scope::Environment(project, _) => Some(project),
        }
    }

    pub fn environment(&self) -> Option<&Name> {
        match self {
            Scope::Environment(_, environment) => Some(environment),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Server => f.write_str("the server"),
            Scope::Project(project) => write!(f, "project {project}"),
            Scope::Environment(project, environment) => {
                write!(f, "environment {environment} of project {project}")
            }
        }
    }
}

/// One role for one principal over one scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    pub principal: Principal,
    pub role: Role,
    pub scope: Scope,
}

/// Whether `grants` allow `action` at `place`.
///
/// A grant over one environment also counts in its project for everything but
/// administering it: an approver of `prod` can look at the project whose releases they
/// approve, and a CI account that promotes into `dev` can create the releases and hand
/// in the evidence it promotes.
pub fn allowed(grants: &[Grant], action: Action, place: &Scope) -> bool {
    grants.iter().any(|grant| {
        grant.role.allows(action)
            && (grant.scope.covers(place)
                || (action != Action::Administer
                    && matches!(place, Scope::Project(_))
                    && grant.scope.project() == place.project()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        text.parse().unwrap()
    }

    fn grant(role: Role, scope: Scope) -> Grant {
        Grant {
            principal: Principal::User(name("alice")),
            role,
            scope,
        }
    }

    #[test]
    fn principals_parse_and_print() {
        assert_eq!(
            "alice".parse::<Principal>().unwrap(),
            Principal::User(name("alice"))
        );
        assert_eq!(
            "user:alice".parse::<Principal>().unwrap(),
            Principal::User(name("alice"))
        );
        let service: Principal = "service:payments-ci".parse().unwrap();
        assert_eq!(service, Principal::Service(name("payments-ci")));
        assert_eq!(service.to_string(), "service:payments-ci");
        assert_eq!(Principal::User(name("alice")).to_string(), "alice");
        for (bad, reason) in [
            ("robot:x", "unknown kind \"robot\""),
            ("service:", "1 to 63"),
            ("Alice", "found 'A'"),
        ] {
            let error = bad.parse::<Principal>().unwrap_err().to_string();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }

    #[test]
    fn roles_allow_their_actions() {
        use Action::{Administer, Approve, Promote, View};
        for (role, allowed) in [
            (Role::Viewer, vec![View]),
            (Role::Promoter, vec![View, Promote]),
            (Role::Approver, vec![View, Approve]),
            (Role::Admin, vec![View, Promote, Approve, Administer]),
        ] {
            for action in [View, Promote, Approve, Administer] {
                assert_eq!(
                    role.allows(action),
                    allowed.contains(&action),
                    "{role} {action:?}"
                );
            }
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        let error = "owner".parse::<Role>().unwrap_err().to_string();
        assert!(
            error.contains("viewer, promoter, approver and admin"),
            "{error}"
        );
    }

    #[test]
    fn scopes_cover_what_is_inside_them() {
        let shop = Scope::Project(name("shop"));
        let prod = Scope::Environment(name("shop"), name("prod"));
        let dev = Scope::Environment(name("shop"), name("dev"));
        let other = Scope::Project(name("other"));
        assert!(Scope::Server.covers(&prod) && Scope::Server.covers(&Scope::Server));
        assert!(shop.covers(&prod) && shop.covers(&shop));
        assert!(!shop.covers(&Scope::Server) && !shop.covers(&other));
        assert!(prod.covers(&prod) && !prod.covers(&dev) && !prod.covers(&shop));
    }

    #[test]
    fn an_environment_grant_counts_in_its_project_but_not_to_administer_it() {
        let grants = [grant(
            Role::Admin,
            Scope::Environment(name("shop"), name("dev")),
        )];
        let shop = Scope::Project(name("shop"));
        assert!(allowed(&grants, Action::Promote, &shop));
        assert!(!allowed(&grants, Action::Administer, &shop));
        assert!(allowed(
            &grants,
            Action::Administer,
            &Scope::Environment(name("shop"), name("dev"))
        ));
    }

    #[test]
    fn an_environment_grant_acts_in_its_environment_only() {
        let grants = [grant(
            Role::Approver,
            Scope::Environment(name("shop"), name("prod")),
        )];
        let shop = Scope::Project(name("shop"));
        assert!(allowed(&grants, Action::View, &shop));
        assert!(allowed(
            &grants,
            Action::Approve,
            &Scope::Environment(name("shop"), name("prod"))
        ));
        assert!(!allowed(
            &grants,
            Action::Approve,
            &Scope::Environment(name("shop"), name("dev"))
        ));
        assert!(!allowed(
            &grants,
            Action::View,
            &Scope::Project(name("other"))
        ));
        assert!(!allowed(&grants, Action::View, &Scope::Server));
        assert!(!allowed(&[], Action::View, &shop));
    }
}
