//! The pure half of the storage wing: everything here is deterministic given its inputs, with no tokio, no
//! sockets and no disk (`cargo check -p bitdust-storage --no-default-features` builds it alone).
//!
//! - [`pipeline`]: a block of archive bytes → zstd → AES-256-GCM → Reed-Solomon shards → fragments, and back;
//! - [`erasure`]: the ecc layout RS(k, n) and the coder; [`fragment`]: the fragment header format;
//! - [`catalog`]: the customer's sealed, signed, revisioned index of backups, versions, files and blocks;
//! - [`chunk`], [`tree`], [`pack`]: catalog format 2's content-defined chunks sealed one by one, directory trees,
//!   and packs of sealed chunks with their index; [`policy`]: forget's keep rules (restic's meaning);
//! - [`wire`]: the `/bitdust/storage/1` messages and contracts; [`codec`]: their bytes on the wire;
//! - [`rebuild`]: planning and regenerating lost fragments from encrypted ones; [`audit`]: proofs of storage;
//! - [`grant`]: an owner's signed grant letting one other peer fetch some of its fragments;
//! - [`records`]: the storage wing's DHT records (the supplier list, the supplier service key);
//! - [`maintenance`]: the customer's maintenance as one pure state composed of the automata, and its simulator;
//! - [`automata`]: supplier connection, hire/fire and rebuild, each a pure transition function.

pub mod audit;
pub mod automata;
pub mod catalog;
pub mod chunk;
pub mod codec;
pub mod erasure;
pub mod fragment;
pub mod grant;
pub mod hiring;
pub mod maintenance;
pub mod pack;
pub mod pipeline;
pub mod policy;
pub mod rebuild;
pub mod records;
pub mod tree;
pub mod wire;
