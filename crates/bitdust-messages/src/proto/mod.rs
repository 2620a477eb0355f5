//! The messages wing's pure protocol half: no tokio, no sockets, no disk.

pub mod contacts;
pub mod e2e;
pub mod files;
pub mod groups;
pub mod pow;
pub mod public;
pub mod shares;
pub mod wire;
