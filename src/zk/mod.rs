//! The ZooKeeper admin layer: the only code that opens ZooKeeper connections, and the only async
//! code in the charm.
//!
//! - **Pure parsers, tested on real answers.** Four-letter words (`srvr`, `mntr`, `conf`) are
//!   parsed by pure functions in [`fourlw`], checked against output recorded from ZooKeeper 3.8.0
//!   (`src/zk/testdata/`). "This ZooKeeper instance is not currently serving requests" is a value
//!   ([`FourLw::NotServing`]), never an error deep inside a caller.
//! - **Typed errors.** [`ZkError`] names what failed and what the operator can do; the client
//!   crate's errors are mapped in one function.

pub mod acl;
pub mod error;
pub mod fourlw;

pub use acl::{digest_id, AclEntry, AclError, Perms};
pub use error::ZkError;
pub use fourlw::{
    four_letter_word, is_broadcast, parse_conf, parse_mntr, parse_srvr, Conf, FourLw, Mntr, Mode,
    Srvr,
};
