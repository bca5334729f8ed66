//! The client relation (`zookeeper` endpoint): a znode (chroot) per client application, ACLs,
//! credentials and discovery. Requests are parsed and arbitrated (pure), znodes provisioned on
//! the quorum leader, and credentials published only once every server knows the client's user.

pub mod request;
pub mod response;
