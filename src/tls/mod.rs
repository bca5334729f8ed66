//! TLS (issue 17, in progress): the unit's key and CSR, what a provider sends checked before
//! use (`material`), the `tls-certificates` v4 wire format (`wire`), what a server serves at
//! each step of the no-downtime switch (`serve`), the leader's switch planner gated on peer
//! data (`phase`), and each unit's certificate intake with renewal and CA rotation
//! (`intake`). Wiring them into the hook (gather, decide, execute), the file writing and the
//! client relation's `tls-ca` come on top of these.

pub mod intake;
pub mod material;
pub mod phase;
pub mod serve;
pub mod wire;
