//! Scenario tests: state in -> event -> state, writes and outcome out, through the real
//! dispatch and reconcile over the fakes of [`super::testing`]. None needs a server.

mod actions;
mod clients;
mod deferral;
mod guards;
mod hooks;
mod lifecycle;
mod races;
mod restart;
mod upgrade;
