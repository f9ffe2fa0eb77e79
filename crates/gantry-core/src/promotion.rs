//! The life of a promotion: waiting for its gates, queued, running, and one final state.

use std::fmt;
use std::str::FromStr;

/// Where a promotion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromotionState {
    /// Its gates are pending (an approval, a soak time, a freeze window): it joins the
    /// queue when they pass.
    Waiting,
    /// Waiting for its turn: one promotion runs per environment at a time.
    Queued,
    /// Copying or retagging into the environment's targets.
    Running,
    /// The targets hold the release and the pointer moved.
    Succeeded,
    /// It could not complete; the pointer did not move.
    Failed,
    /// Someone cancelled it before it ran.
    Cancelled,
    /// A newer promotion into the same environment made it pointless before it ran.
    Superseded,
    /// Its gates failed; the pointer did not move.
    Rejected,
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a promotion cannot go from {from} to {to}")]
pub struct TransitionError {
    pub from: PromotionState,
    pub to: PromotionState,
}

impl PromotionState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PromotionState::Succeeded
                | PromotionState::Failed
                | PromotionState::Cancelled
                | PromotionState::Superseded
                | PromotionState::Rejected
        )
    }

    /// Checks a transition. `Running → Queued` is how a promotion interrupted by a
    /// crash goes back in line to be run again; `Running → Waiting | Rejected` is the
    /// gates' second look just before it executes.
    pub fn transition(self, to: PromotionState) -> Result<PromotionState, TransitionError> {
        use PromotionState::{
            Cancelled, Failed, Queued, Rejected, Running, Succeeded, Superseded, Waiting,
        };
        let allowed = matches!(
            (self, to),
            (Waiting, Queued | Rejected | Cancelled | Superseded)
                | (Queued, Running | Cancelled | Superseded)
                | (Running, Succeeded | Failed | Queued | Waiting | Rejected)
        );
        if allowed {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PromotionState::Waiting => "waiting",
            PromotionState::Queued => "queued",
            PromotionState::Running => "running",
            PromotionState::Succeeded => "succeeded",
            PromotionState::Failed => "failed",
            PromotionState::Cancelled => "cancelled",
            PromotionState::Superseded => "superseded",
            PromotionState::Rejected => "rejected",
        }
    }

    pub const ALL: [PromotionState; 8] = [
        PromotionState::Waiting,
        PromotionState::Queued,
        PromotionState::Running,
        PromotionState::Succeeded,
        PromotionState::Failed,
        PromotionState::Cancelled,
        PromotionState::Superseded,
        PromotionState::Rejected,
    ];
}

impl FromStr for PromotionState {
    type Err = String;

    fn from_str(text: &str) -> Result<PromotionState, String> {
        PromotionState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| format!("unknown promotion state {text:?}"))
    }
}

impl fmt::Display for PromotionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::PromotionState::{self, *};

    #[test]
    fn transitions() {
        let allowed: Vec<(PromotionState, PromotionState)> = PromotionState::ALL
            .into_iter()
            .flat_map(|from| PromotionState::ALL.into_iter().map(move |to| (from, to)))
            .filter(|(from, to)| from.transition(*to).is_ok())
            .collect();
        assert_eq!(
            allowed,
            [
                (Waiting, Queued),
                (Waiting, Cancelled),
                (Waiting, Superseded),
                (Waiting, Rejected),
                (Queued, Running),
                (Queued, Cancelled),
                (Queued, Superseded),
                (Running, Waiting),
                (Running, Queued),
                (Running, Succeeded),
                (Running, Failed),
                (Running, Rejected)
            ]
        );
        for state in PromotionState::ALL {
            assert_eq!(
                state.is_final(),
                !matches!(state, Waiting | Queued | Running),
                "{state}"
            );
            assert_eq!(state.as_str().parse::<PromotionState>(), Ok(state));
            if state.is_final() {
                assert!(
                    PromotionState::ALL
                        .iter()
                        .all(|to| state.transition(*to).is_err()),
                    "final states stay final"
                );
            }
        }
        assert_eq!(
            Succeeded.transition(Running).unwrap_err().to_string(),
            "a promotion cannot go from succeeded to running"
        );
    }
}
