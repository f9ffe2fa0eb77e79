//! Gantry's ledger: a tamper-evident, append-only audit log.
//!
//! Every entry names the hash of the one before it ([`entry`]), so changing, removing or
//! reordering an entry breaks the chain after it; the entries are also the leaves of an
//! RFC 6962 Merkle tree ([`merkle`]) whose root the server signs from time to time as a
//! C2SP tlog checkpoint ([`note`]), so the entries up to a checkpoint cannot be rewritten
//! without the signing key, even from the end. [`export`] writes the whole ledger as a file
//! that anyone holding the public key can verify. [`replay`] re-derives from the entries
//! what the live tables must hold (pointers, holds, stopped lines, grants, tokens) and
//! names every place where they disagree.
//!
//! This is pure code: the store that persists entries calls into it.

pub mod canonical;
pub mod entry;
pub mod export;
pub mod merkle;
pub mod note;
pub mod replay;

pub use canonical::canonical_json;
pub use entry::{Entry, GENESIS};
pub use export::{
    CheckpointProblem, ExportWriter, VerifyError, VerifySummary, verify_chain, verify_export,
    write_export,
};
pub use merkle::Tree;
pub use note::{Checkpoint, NoteError, SigningKey, VerifierKey};
