//! Gantry's storage: the Store trait, its backends, and the ledger.
//!
//! # Backends
//!
//! [`store::Store`] has two implementations that behave alike call for call (the same
//! records, errors and ledger entries), as `tests/it` checks by running one suite on both:
//!
//! - [`sqlite::SqliteStore`], the default: one file, one process.
//! - [`postgres::PostgresStore`], for several `gantry serve` replicas sharing one
//!   database. Writers on all replicas take turns on one advisory lock, so the ledger
//!   stays a single chain and one promotion runs per environment; see [`postgres`].
//!
//! Each backend has its own append-only migrations folder (`migrations/sqlite`,
//! `migrations/postgres`), applied when the store opens. What they share, how a change
//! becomes its ledger entry and how stored text reads back, lives in one private module.
//!
//! The `PostgreSQL` tests create a throwaway database on the server that
//! `GANTRY_TEST_POSTGRES` names (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! `scripts/test.sh` starts a throwaway cluster when there is none.

pub mod ledger;
pub mod postgres;
pub mod sqlite;
pub mod store;
mod stored;
pub mod time;
