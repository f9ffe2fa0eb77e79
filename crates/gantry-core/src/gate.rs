//! Gate answers and how they combine into a verdict.

use std::fmt;
use std::str::FromStr;

/// What one gate says about a release entering an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GateState {
    /// The gate is satisfied.
    Pass,
    /// Not yet: something may still arrive (an approval, the end of a soak or freeze).
    Pending,
    /// The release does not meet the gate.
    Fail,
}

/// The answer for a release and an environment, from all gates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Pending,
    Deny,
}

impl Verdict {
    /// Any failing gate denies; otherwise any pending gate keeps the release waiting;
    /// otherwise (no gates at all included) the release may go.
    pub fn of(states: impl IntoIterator<Item = GateState>) -> Verdict {
        let worst = states.into_iter().max().unwrap_or(GateState::Pass);
        match worst {
            GateState::Pass => Verdict::Allow,
            GateState::Pending => Verdict::Pending,
            GateState::Fail => Verdict::Deny,
        }
    }
}

macro_rules! words {
    ($type:ident, $($variant:ident => $text:literal),+) => {
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
                    other => Err(format!("{other:?} is not one of: {}", [$($text),+].join(", "))),
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

words!(GateState, Pass => "pass", Pending => "pending", Fail => "fail");
words!(Verdict, Allow => "allow", Pending => "pending", Deny => "deny");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_gate_decides() {
        use GateState::{Fail, Pass, Pending};
        assert_eq!(Verdict::of([]), Verdict::Allow);
        assert_eq!(Verdict::of([Pass, Pass]), Verdict::Allow);
        assert_eq!(Verdict::of([Pass, Pending]), Verdict::Pending);
        assert_eq!(Verdict::of([Pending, Fail, Pass]), Verdict::Deny);
        assert_eq!("deny".parse::<Verdict>(), Ok(Verdict::Deny));
        assert!("maybe".parse::<GateState>().is_err());
    }
}
