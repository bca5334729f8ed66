//! Errors of the simulator itself (not of hook tools, which print Juju's strings).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Bad command line: exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The request cannot be carried out (unknown unit, bad value, ...): exit code 1.
    #[error("{0}")]
    Failed(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SimError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SimError::Usage(_) => 2,
            _ => 1,
        }
    }
    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> SimError {
        SimError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, SimError>;

/// `Err(SimError::Failed(format!(...)))`.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::error::SimError::Failed(format!($($arg)*))) };
}

/// `Err(SimError::Usage(format!(...)))`.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => { return Err($crate::error::SimError::Usage(format!($($arg)*))) };
}
