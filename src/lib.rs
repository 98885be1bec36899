//! converge: a declarative experiment orchestrator. TOML manifests declare a
//! model, a learning-rate grid and fixed hyperparameters; converge expands
//! them into content-hashed runs, trains the ones not yet done, and ranks
//! them by how their loss curves converge.
//!
//! The pipeline, module by module: manifest -> plan -> store -> schedule ->
//! exec/train (data, models) -> analysis -> report. See DESIGN.md.

pub mod analysis;
pub mod cli;
pub mod data;
pub mod error;
pub mod events;
pub mod exec;
pub mod manifest;
pub mod models;
pub mod plan;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod spec;
pub mod store;
pub mod train;

pub use error::Error;

use std::cell::RefCell;

thread_local! {
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replace the default panic hook, which prints to stderr, by one that only
/// remembers where the panic happened: panics are caught (a failed run, or
/// an internal error) and reported once, with their message.
pub fn install_quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_LOCATION.with(|cell| *cell.borrow_mut() = location);
    }));
}

/// The text of a caught panic, with its location when the hook saw it.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    match PANIC_LOCATION.with(|cell| cell.borrow_mut().take()) {
        Some(location) => format!("{message} (at {location})"),
        None => message,
    }
}
