//! ZooKeeper ACL entries, pure: permissions from `cdrwa` letters, `scheme:id:perms` text, digest
//! ids, and conversion to and from the client crate's `Acl`.

use std::fmt;

use sha1::{Digest, Sha1};
use zookeeper_client as zkc;

use crate::secret::Secret;

/// A refused ACL text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("unknown ACL permission letter(s) {letters:?} in {text:?}; use only c, d, r, w, a (create, delete, read, write, admin)")]
    UnknownPerms { text: String, letters: String },
    #[error("bad ACL {text:?}: expected scheme:id:perms (e.g. sasl:alice:cdrwa)")]
    BadEntry { text: String },
}

/// A permission set: any of create, delete, read, write, admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(u8);

impl Perms {
    pub const READ: Perms = Perms(1);
    pub const WRITE: Perms = Perms(2);
    pub const CREATE: Perms = Perms(4);
    pub const DELETE: Perms = Perms(8);
    pub const ADMIN: Perms = Perms(16);
    pub const ALL: Perms = Perms(31);
    pub const NONE: Perms = Perms(0);

    /// In the order ZooKeeper's CLI prints them.
    const LETTERS: [(char, Perms); 5] = [
        ('c', Perms::CREATE),
        ('d', Perms::DELETE),
        ('r', Perms::READ),
        ('w', Perms::WRITE),
        ('a', Perms::ADMIN),
    ];

    /// Parses letters from `cdrwa` in any order (repeats are fine). Unknown letters are refused,
    /// all of them named in the error.
    pub fn parse(text: &str) -> Result<Perms, AclError> {
        let mut bits = 0u8;
        let mut unknown = String::new();
        for ch in text.chars() {
            match Self::LETTERS.iter().find(|(l, _)| *l == ch) {
                Some((_, p)) => bits |= p.0,
                None => unknown.push(ch),
            }
        }
        if unknown.is_empty() {
            Ok(Perms(bits))
        } else {
            Err(AclError::UnknownPerms {
                text: text.to_string(),
                letters: unknown,
            })
        }
    }

    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }

    fn to_client(self) -> zkc::Permission {
        Self::LETTERS
            .iter()
            .filter(|(_, p)| self.contains(*p))
            .fold(zkc::Permission::NONE, |acc, (_, p)| {
                acc | match *p {
                    Perms::CREATE => zkc::Permission::CREATE,
                    Perms::DELETE => zkc::Permission::DELETE,
                    Perms::READ => zkc::Permission::READ,
                    Perms::WRITE => zkc::Permission::WRITE,
                    _ => zkc::Permission::ADMIN,
                }
            })
    }

    fn from_client(p: zkc::Permission) -> Perms {
        [
            (zkc::Permission::CREATE, Perms::CREATE),
            (zkc::Permission::DELETE, Perms::DELETE),
            (zkc::Permission::READ, Perms::READ),
            (zkc::Permission::WRITE, Perms::WRITE),
            (zkc::Permission::ADMIN, Perms::ADMIN),
        ]
        .into_iter()
        .filter(|(c, _)| p.has(*c))
        .fold(Perms::NONE, |acc, (_, ours)| acc.union(ours))
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (l, p) in Self::LETTERS {
            if self.contains(p) {
                write!(f, "{l}")?;
            }
        }
        Ok(())
    }
}

/// One ACL entry: `scheme:id:perms`, e.g. `sasl:alice:cdrwa`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclEntry {
    pub perms: Perms,
    pub scheme: String,
    pub id: String,
}

impl AclEntry {
    /// A SASL user (`sasl:<user>:<perms>`).
    pub fn sasl(user: &str, perms: Perms) -> AclEntry {
        AclEntry {
            perms,
            scheme: "sasl".into(),
            id: user.into(),
        }
    }

    /// A digest user (`digest:<user>:<base64(sha1(user:password))>:<perms>`).
    pub fn digest(user: &str, password: &Secret, perms: Perms) -> AclEntry {
        AclEntry {
            perms,
            scheme: "digest".into(),
            id: digest_id(user, password),
        }
    }

    /// Everyone (`world:anyone:<perms>`).
    pub fn world_anyone(perms: Perms) -> AclEntry {
        AclEntry {
            perms,
            scheme: "world".into(),
            id: "anyone".into(),
        }
    }

    /// Parses `scheme:id:perms`; the id may itself contain `:` (digest ids do).
    pub fn parse(text: &str) -> Result<AclEntry, AclError> {
        let bad = || AclError::BadEntry {
            text: text.to_string(),
        };
        let (scheme, rest) = text.split_once(':').ok_or_else(bad)?;
        let (id, perms) = rest.rsplit_once(':').ok_or_else(bad)?;
        if scheme.is_empty() || id.is_empty() {
            return Err(bad());
        }
        Ok(AclEntry {
            perms: Perms::parse(perms)?,
            scheme: scheme.to_string(),
            id: id.to_string(),
        })
    }

    pub fn to_client(&self) -> zkc::Acl {
        zkc::Acl::new(
            self.perms.to_client(),
            zkc::AuthId::new(&self.scheme, &self.id),
        )
    }

    pub fn from_client(acl: &zkc::Acl) -> AclEntry {
        AclEntry {
            perms: Perms::from_client(acl.permission()),
            scheme: acl.scheme().to_string(),
            id: acl.id().to_string(),
        }
    }
}

impl fmt::Display for AclEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.scheme, self.id, self.perms)
    }
}

impl From<&AclEntry> for zkc::Acl {
    fn from(e: &AclEntry) -> zkc::Acl {
        e.to_client()
    }
}

impl From<&zkc::Acl> for AclEntry {
    fn from(a: &zkc::Acl) -> AclEntry {
        AclEntry::from_client(a)
    }
}

/// The digest id ZooKeeper compares against: `user:base64(sha1("user:password"))`.
pub fn digest_id(user: &str, password: &Secret) -> String {
    let mut h = Sha1::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(password.expose().as_bytes());
    format!("{user}:{}", base64(&h.finalize()))
}

/// Standard base64 with padding (RFC 4648 §4). Twenty lines instead of a crate.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_parse_from_letters_and_print_in_cdrwa_order() {
        for (text, want) in [
            ("cdrwa", "cdrwa"),
            ("awrdc", "cdrwa"),
            ("r", "r"),
            ("rw", "rw"),
            ("rrw", "rw"),
            ("", ""),
        ] {
            assert_eq!(Perms::parse(text).unwrap().to_string(), want, "{text}");
        }
        assert_eq!(Perms::parse("cdrwa").unwrap(), Perms::ALL);
        assert_eq!(Perms::parse("").unwrap(), Perms::NONE);
        match Perms::parse("rwxz") {
            Err(AclError::UnknownPerms { letters, .. }) => assert_eq!(letters, "xz"),
            other => panic!("{other:?}"),
        }
        let msg = Perms::parse("RW").unwrap_err().to_string();
        assert!(
            msg.contains("\"RW\"") && msg.contains("c, d, r, w, a"),
            "{msg}"
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn digest_ids_match_zookeeper() {
        // Both values computed by ZooKeeper's DigestAuthenticationProvider (zookeeper-lab.md §4).
        assert_eq!(
            digest_id("super", &Secret::new("superpw".into())),
            "super:g9oN2HttPfn8MMWJZ2r45Np/LIA="
        );
        assert_eq!(
            digest_id("carol", &Secret::new("carolpw".into())),
            "carol:awAKh7Y8u+33+uHGElmJhU5NwHU="
        );
        let e = AclEntry::digest("carol", &Secret::new("carolpw".into()), Perms::ALL);
        assert_eq!(
            e.to_string(),
            "digest:carol:awAKh7Y8u+33+uHGElmJhU5NwHU=:cdrwa"
        );
    }

    #[test]
    fn entries_print_parse_and_convert() {
        let alice = AclEntry::sasl("alice", Perms::ALL);
        assert_eq!(alice.to_string(), "sasl:alice:cdrwa");
        assert_eq!(AclEntry::parse("sasl:alice:cdrwa").unwrap(), alice);
        assert_eq!(
            AclEntry::world_anyone(Perms::READ).to_string(),
            "world:anyone:r"
        );
        let d = AclEntry::parse("digest:carol:awAKh7Y8u+33+uHGElmJhU5NwHU=:rw").unwrap();
        assert_eq!(d.id, "carol:awAKh7Y8u+33+uHGElmJhU5NwHU=");
        assert_eq!(d.perms, Perms::parse("rw").unwrap());
        for bad in ["sasl", "sasl:alice", ":alice:r", "sasl::r"] {
            assert!(AclEntry::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            AclEntry::parse("sasl:alice:rwq"),
            Err(AclError::UnknownPerms { .. })
        ));

        for text in [
            "sasl:alice:cdrwa",
            "world:anyone:r",
            "sasl:bob:rw",
            "ip:127.0.0.1:",
        ] {
            let e = AclEntry::parse(text).unwrap();
            let c = e.to_client();
            assert_eq!(c.scheme(), e.scheme);
            assert_eq!(c.id(), e.id);
            assert_eq!(AclEntry::from_client(&c), e, "{text}");
        }
        assert_eq!(
            AclEntry::sasl("a", Perms::ALL).to_client().permission(),
            zkc::Permission::ALL
        );
        assert_eq!(
            AclEntry::sasl("a", Perms::parse("rw").unwrap())
                .to_client()
                .permission(),
            zkc::Permission::READ | zkc::Permission::WRITE
        );
    }
}
