//! Gantry's storage: the Store trait, its backends, and the ledger.

pub mod ledger;
pub mod sqlite;
pub mod store;
mod stored;
pub mod time;
