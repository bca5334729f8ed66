//! The timeline (`<model>/log.jsonl`): one JSON line per hook or action, appended as it
//! completes, with its environment, every tool call, exit code, duration and output.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SimError};
use crate::model::Paths;
use crate::tools::ctx::ToolCall;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<u64>,
    pub env: BTreeMap<String, String>,
    pub tool_calls: Vec<ToolCall>,
    pub exit_code: i32,
    pub duration_ms: u64,
    /// CPU time (user + system) of the hook process and its hook-tool children, ms.
    #[serde(default)]
    pub cpu_ms: f64,
    /// Peak RSS of that process tree (its largest process), KiB.
    #[serde(default)]
    pub max_rss_kib: u64,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// When the process started and ended (ms since the epoch).
    #[serde(default)]
    pub start_ms: u64,
    #[serde(default)]
    pub end_ms: u64,
    /// The hook exited 0 but its changes could not be committed (leadership lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_error: Option<String>,
    /// Other entries (by seq) whose run overlapped this one; filled in by `log`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlaps: Vec<u64>,
}

pub fn append(paths: &Paths, e: &Entry) -> Result<()> {
    let path = paths.log();
    let mut line = serde_json::to_vec(e)
        .map_err(|err| SimError::Failed(format!("cannot serialise a log entry: {err}")))?;
    line.push(b'\n');
    let mut f = fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(|err| SimError::io("cannot open", &path, err))?;
    // A crash can leave a torn last line: start on a fresh line so this entry stays readable.
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > 0 {
        let mut last = [0u8; 1];
        if f.seek(SeekFrom::Start(len - 1)).is_ok()
            && f.read_exact(&mut last).is_ok()
            && last[0] != b'\n'
        {
            line.insert(0, b'\n');
        }
    }
    f.write_all(&line)
        .map_err(|err| SimError::io("cannot write", &path, err))
}

/// Every complete entry (a torn last line from a crash is skipped).
pub fn read(paths: &Paths) -> Result<Vec<Entry>> {
    let path = paths.log();
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SimError::io("cannot read", &path, e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Marks, in every entry, the other entries that ran at the same time.
pub fn mark_overlaps(entries: &mut [Entry]) {
    let spans: Vec<(u64, u64, u64)> = entries
        .iter()
        .map(|e| (e.seq, e.start_ms, e.end_ms))
        .collect();
    for e in entries.iter_mut() {
        e.overlaps = spans
            .iter()
            .filter(|(seq, s, t)| {
                *seq != e.seq && e.end_ms > 0 && *t > 0 && *s < e.end_ms && e.start_ms < *t
            })
            .map(|(seq, _, _)| *seq)
            .collect();
    }
}
