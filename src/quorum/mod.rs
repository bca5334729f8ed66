//! Ensemble membership, pure: no I/O, no ZooKeeper client types.
//!
//! `member` parses and formats what ZooKeeper itself writes: the `server.N=...` lines of the
//! dynamic configuration and the `/zookeeper/config` node (or the `membership:` section of the
//! `conf` four-letter word).

pub mod member;
