//! Znode path arithmetic (pure), shared by the admin layer and the client planner.

/// `a` is `b` or below it (`/a/b` is within `/a`; `/ab` is not).
pub fn is_within(a: &str, b: &str) -> bool {
    a == b || (a.starts_with(b) && (b == "/" || a.as_bytes().get(b.len()) == Some(&b'/')))
}

/// One of two paths contains the other (or they are equal).
pub fn overlaps(a: &str, b: &str) -> bool {
    is_within(a, b) || is_within(b, a)
}

/// Every ancestor of an absolute path except `/`, outermost first (`/a/b/c` -> `/a`, `/a/b`).
pub fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = path.get(at + 1..).and_then(|rest| rest.find('/')) {
        at += 1 + i;
        out.push(path[..at].to_string());
    }
    out
}

/// `parent` + `/` + `name` (no double slash under the root).
pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_overlap_ancestors_children() {
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(is_within("/a", "/"));
        assert!(!is_within("/ab", "/a"));
        assert!(!is_within("/a", "/a/b"));
        assert!(overlaps("/a", "/a/b") && overlaps("/a/b", "/a"));
        assert!(!overlaps("/a/b", "/a/c"));
        assert_eq!(ancestors("/a/b/c"), vec!["/a", "/a/b"]);
        assert!(ancestors("/a").is_empty());
        assert!(ancestors("/").is_empty());
        assert_eq!(child_path("/", "x"), "/x");
        assert_eq!(child_path("/a", "x"), "/a/x");
    }
}
