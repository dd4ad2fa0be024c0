//! The one integration-test binary: each module tests one subsystem through its public
//! API (or the binary), on temporary data roots.

// Tests act as someone with disk access (planting links, inspecting files), so they use
// the ambient filesystem that the service itself may not.
#![allow(clippy::disallowed_methods)]

mod audit;
mod backup;
mod cli;
mod control;
mod crash;
mod dav_clients;
mod deploy;
mod deployment_audit;
mod diskfull;
mod fuzz_corpus;
mod haproxy;
pub mod http;
mod isolation;
mod layout_spec;
mod lifecycle;
mod moves;
mod names;
mod netns;
mod nodes;
mod portability;
mod robust;
mod served;
mod support;
mod vault;
mod web_ui;
