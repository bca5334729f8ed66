//! Pure quorum logic, no I/O and no ZooKeeper client types: parsing and formatting what
//! ZooKeeper writes (`member`: `server.N=...` lines, `/zookeeper/config`, the `conf` membership)
//! and planning who starts with which members and which member to add or remove next (`plan`).

pub mod member;
pub mod plan;
