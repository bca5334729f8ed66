//! Passwords and keys in memory: never printed, never logged.

use std::fmt;
use std::io::Read;

/// A secret string. `Debug` prints `***`; there is no `Display`. Use [`Secret::expose`] only where
/// the value must leave the process (a file the server reads, a hook-tool stdin, a client login).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `len` characters from [A-Za-z0-9], drawn from the kernel's CSPRNG (as the Python charms'
    /// 32-character passwords). Rejection sampling keeps the distribution uniform.
    pub fn generate(len: usize) -> std::io::Result<Secret> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut urandom = std::fs::File::open("/dev/urandom")?;
        let mut out = String::with_capacity(len);
        let mut buf = [0u8; 64];
        while out.len() < len {
            urandom.read_exact(&mut buf)?;
            for b in buf {
                // 62 * 4 = 248: values >= 248 would bias the first characters.
                if b < 248 && out.len() < len {
                    out.push(ALPHABET[(b % 62) as usize] as char);
                }
            }
        }
        Ok(Secret(out))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_alphanumeric_and_distinct() {
        let a = Secret::generate(32).unwrap();
        let b = Secret::generate(32).unwrap();
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "***");
    }
}
