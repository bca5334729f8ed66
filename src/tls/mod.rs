//! TLS (issue 17, in progress): the unit's key and CSR, what a provider sends checked before
//! use (`material`), the `tls-certificates` v4 wire format (`wire`), and what a server serves
//! at each step of the no-downtime switch (`serve`). The phase machine gated on peer data, the
//! file writing and the client relation's `tls-ca` come on top of these.

pub mod material;
pub mod serve;
pub mod wire;
