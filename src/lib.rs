//! Bakery bakes a machine image, proves it on a live probe instance, and promotes it only when
//! every gate passes.
//!
//! Data flows one way: [`config`] → [`pipeline`] → [`bake`] / [`verify`] / [`promote`] →
//! [`cloud`] providers and [`transport`]s → [`suites`] results → [`gate`] → [`report`].
//! [`run`] is the state the stages of one run share; the pipeline creates it, the stages read it.
//! The front ends stack the same way: [`action`] → [`cli`] → [`pipeline`] and [`outdated`].

pub mod action;
#[cfg(feature = "aws")]
pub mod aws;
pub mod bake;
pub mod chaos;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod error;
pub mod gate;
pub mod git;
pub mod ledger;
pub mod manifest;
pub mod outdated;
pub mod pipeline;
pub mod progress;
pub mod promote;
pub mod provision;
pub mod report;
pub mod run;
pub mod signals;
pub mod suites;
pub mod transport;
pub mod validate;
pub mod verify;

#[cfg(test)]
mod fuzz;

pub use error::{Error, Result};
