//! Pure quorum logic: who starts with which members, which member to add or remove next.

pub mod plan;
