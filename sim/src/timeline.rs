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

/// Marks, in every entry, the other entries that ran at the same time (a sweep over the
/// entries by start time: long timelines stay cheap).
pub fn mark_overlaps(entries: &mut [Entry]) {
    let mut spans: Vec<(u64, u64, usize)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.end_ms > 0)
        .map(|(i, e)| (e.start_ms, e.end_ms, i))
        .collect();
    spans.sort_unstable();
    let mut found: Vec<Vec<u64>> = vec![Vec::new(); entries.len()];
    for (k, &(start, end, i)) in spans.iter().enumerate() {
        for &(s2, e2, j) in &spans[k + 1..] {
            if s2 >= end {
                break;
            }
            if start < e2 {
                found[i].push(entries[j].seq);
                found[j].push(entries[i].seq);
            }
        }
    }
    for (e, mut o) in entries.iter_mut().zip(found) {
        o.sort_unstable();
        e.overlaps = o;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, start_ms: u64, end_ms: u64) -> Entry {
        Entry {
            seq,
            unit: String::new(),
            hook: None,
            action: None,
            action_id: None,
            env: BTreeMap::new(),
            tool_calls: Vec::new(),
            exit_code: 0,
            duration_ms: end_ms - start_ms,
            cpu_ms: 0.0,
            max_rss_kib: 0,
            stdout: String::new(),
            stderr: String::new(),
            timed_out: false,
            start_ms,
            end_ms,
            commit_error: None,
            overlaps: Vec::new(),
        }
    }

    #[test]
    fn overlaps_are_marked_both_ways_and_touching_runs_do_not_overlap() {
        let mut e = vec![
            entry(1, 0, 10),
            entry(2, 5, 20),
            entry(3, 10, 12),
            entry(4, 30, 40),
            entry(5, 11, 11),
        ];
        mark_overlaps(&mut e);
        let got: Vec<Vec<u64>> = e.iter().map(|x| x.overlaps.clone()).collect();
        assert_eq!(
            got,
            [vec![2], vec![1, 3, 5], vec![2, 5], vec![], vec![2, 3]]
        );
    }
}
