//! The `signed_by` gate: each component signed by a configured key or a keyless identity.

use gantry_policy::{Gates, IdentityRule, SignedByGate, Signer, SignerFact};

use crate::{check, facts};

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const WORKFLOW: &str = "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main";

fn gates() -> Gates {
    Gates {
        signed_by: Some(SignedByGate {
            keys: vec!["release-key".to_owned()],
            identities: vec![IdentityRule {
                issuer: ISSUER.to_owned(),
                subject: "https://github.com/acme/*".to_owned(),
            }],
        }),
        ..Gates::default()
    }
}

fn signed(component: &str, signer: Signer) -> SignerFact {
    SignerFact {
        component: component.to_owned(),
        digest: format!("sha256:{:064x}", component.len()).parse().unwrap(),
        signer,
    }
}

fn identity(issuer: &str, subject: &str) -> Signer {
    Signer::Identity {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
    }
}

#[test]
fn a_configured_key_or_a_matching_identity() {
    let mut facts = facts();
    facts.signers = vec![
        signed("api", Signer::Key("release-key".to_owned())),
        signed("worker", identity(ISSUER, WORKFLOW)),
    ];
    check(
        &gates(),
        &facts,
        "allow
        signed-by pass: signed: api by key release-key, worker by https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main (https://token.actions.githubusercontent.com)",
    );
}

#[test]
fn other_signers_do_not_count() {
    let mut facts = facts();
    facts.signers = vec![
        // A key that verified but is not one the gate names.
        signed("api", Signer::Key("laptop-key".to_owned())),
        // The right subject from the wrong issuer.
        signed("worker", identity("https://accounts.google.com", WORKFLOW)),
        // The right issuer, another organisation.
        signed(
            "worker",
            identity(
                ISSUER,
                "https://github.com/mallory/shop/.github/workflows/release.yml@refs/heads/main",
            ),
        ),
        // A signature on a component the release does not have.
        signed("cron", Signer::Key("release-key".to_owned())),
    ];
    check(
        &gates(),
        &facts,
        "pending
        signed-by pending: a signature on api, worker by key release-key or https://github.com/acme/* from https://token.actions.githubusercontent.com",
    );
    facts
        .signers
        .push(signed("api", Signer::Key("release-key".to_owned())));
    check(
        &gates(),
        &facts,
        "pending
        signed-by pending: a signature on worker by key release-key or https://github.com/acme/* from https://token.actions.githubusercontent.com",
    );
}
