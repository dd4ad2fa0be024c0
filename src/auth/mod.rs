//! Authentication and authorization: who the caller is, and what they may do.
//!
//! `password` hashes and checks passwords. This module decides; it never touches tenant
//! bytes itself.

pub mod password;
