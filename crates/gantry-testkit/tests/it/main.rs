//! The testkit proven against the real components it wraps.

mod images;
mod proxy;
mod registry;
