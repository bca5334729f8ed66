//! The tool client: what runs when the `jujusim` binary is started as `relation-get`,
//! `status-set`, ... on a hook's PATH. Kept minimal: it must cost a few milliseconds.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use super::{reads_stdin, Request, Response};

/// Runs tool `tool` with the process arguments; returns the exit code.
pub fn main(tool: &str) -> i32 {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some(context) = std::env::var_os("JUJU_CONTEXT_ID").filter(|c| !c.is_empty()) else {
        eprintln!("ERROR JUJU_CONTEXT_ID not set");
        return 1;
    };
    let Some(socket) = std::env::var_os("JUJU_AGENT_SOCKET_ADDRESS").filter(|s| !s.is_empty())
    else {
        eprintln!("ERROR JUJU_AGENT_SOCKET_ADDRESS not set");
        return 1;
    };
    let stdin = if reads_stdin(tool, &args) {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("ERROR cannot read stdin: {e}");
            return 1;
        }
        Some(s)
    } else {
        None
    };
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let req = Request {
        context: context.to_string_lossy().into_owned(),
        tool: tool.to_string(),
        args,
        cwd,
        stdin,
    };
    match call(&socket, &req) {
        Ok(resp) => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(resp.stdout.as_bytes());
            let _ = o.flush();
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(resp.stderr.as_bytes());
            resp.code
        }
        Err(e) => {
            eprintln!(
                "ERROR cannot reach the jujusim agent at {}: {e} (hook tools work only while their hook runs)",
                std::path::Path::new(&socket).display()
            );
            1
        }
    }
}

fn call(socket: &std::ffi::OsStr, req: &Request) -> std::io::Result<Response> {
    let mut conn = UnixStream::connect(socket)?;
    let body = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    conn.write_all(&body)?;
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut buf = Vec::new();
    conn.read_to_end(&mut buf)?;
    serde_json::from_slice(&buf).map_err(std::io::Error::other)
}
