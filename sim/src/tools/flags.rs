//! A juju/gnuflag-compatible parser (reference §2.0):
//! - flags may come before or after positional arguments; `--` ends flags; a bare `-` is positional;
//! - `--name value` and `--name=value`; one dash for one-letter names (`-r 7`, `-r=7`, `-r7`);
//! - boolean flags take a value only as `--flag=value`, read with Go's `strconv.ParseBool`;
//! - unknown flag: `option provided but not defined: --x` (exit 2).

use std::collections::BTreeMap;

use super::{usage, ToolErr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Value,
}

/// One flag: its names (the first is the canonical one) and kind.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    pub names: &'static [&'static str],
    pub kind: Kind,
}

pub const fn b(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        kind: Kind::Bool,
    }
}

pub const fn v(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        kind: Kind::Value,
    }
}

/// `--format` and `-o/--output`, added to every tool that prints structured output.
pub const FORMAT: Flag = v(&["format"]);
pub const OUTPUT: Flag = v(&["o", "output"]);

#[derive(Debug, Default)]
pub struct Parsed {
    values: BTreeMap<&'static str, (String, String)>,
    bools: BTreeMap<&'static str, bool>,
    pub positional: Vec<String>,
}

impl Parsed {
    /// The value of a value flag (by canonical name).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(_, v)| v.as_str())
    }
    /// The value and the spelling used (`-r` or `--relation`), for error messages.
    pub fn value_as_given(&self, name: &str) -> Option<(&str, &str)> {
        self.values
            .get(name)
            .map(|(given, v)| (given.as_str(), v.as_str()))
    }
    pub fn flag(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn dashed(name: &str) -> String {
    if name.chars().count() == 1 {
        format!("-{name}")
    } else {
        format!("--{name}")
    }
}

pub fn parse(args: &[String], spec: &[Flag]) -> Result<Parsed, ToolErr> {
    let find = |name: &str| spec.iter().find(|f| f.names.contains(&name));
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            p.positional.extend(args[i..].iter().cloned());
            break;
        }
        if a == "-" || !a.starts_with('-') {
            p.positional.push(a.clone());
            continue;
        }
        let body = a.trim_start_matches('-');
        let long = a.starts_with("--");
        let (mut name, mut inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        // `-r7`: a one-letter value flag with the value glued on.
        if !long && inline.is_none() && name.chars().count() > 1 && find(&name).is_none() {
            let first: String = name.chars().take(1).collect();
            if let Some(f) = find(&first) {
                if f.kind == Kind::Value {
                    inline = Some(name[first.len()..].to_string());
                    name = first;
                }
            }
        }
        let Some(flag) = find(&name) else {
            return usage(format!(
                "option provided but not defined: {}",
                dashed(&name)
            ));
        };
        let given = dashed(&name);
        match flag.kind {
            Kind::Bool => {
                let val = match inline {
                    None => true,
                    Some(s) => parse_bool(&s).ok_or_else(|| {
                        ToolErr::Usage(format!(
                            "invalid value {s:?} for option {given}: strconv.ParseBool: parsing {s:?}: invalid syntax"
                        ))
                    })?,
                };
                p.bools.insert(flag.names[0], val);
            }
            Kind::Value => {
                let val = match inline {
                    Some(s) => s,
                    None => {
                        let Some(next) = args.get(i) else {
                            return usage(format!("option needs an argument: {given}"));
                        };
                        i += 1;
                        next.clone()
                    }
                };
                p.values.insert(flag.names[0], (given, val));
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const SPEC: &[Flag] = &[v(&["r", "relation"]), b(&["app"]), FORMAT];

    #[test]
    fn gnuflag_rules() {
        let p = parse(
            &s(&["-", "u/0", "--format=json", "-r", "db:7", "--app"]),
            SPEC,
        )
        .unwrap();
        assert_eq!(p.positional, s(&["-", "u/0"]));
        assert_eq!(p.value("r"), Some("db:7"));
        assert_eq!(p.value("format"), Some("json"));
        assert!(p.flag("app"));
        let p = parse(&s(&["--relation=3", "--app=false", "--", "--x"]), SPEC).unwrap();
        assert_eq!(p.value_as_given("r"), Some(("--relation", "3")));
        assert!(!p.flag("app"));
        assert_eq!(p.positional, s(&["--x"]));
        let p = parse(&s(&["-r7"]), SPEC).unwrap();
        assert_eq!(p.value("r"), Some("7"));
        assert_eq!(
            parse(&s(&["--foo"]), SPEC).unwrap_err(),
            ToolErr::Usage("option provided but not defined: --foo".into())
        );
        assert_eq!(
            parse(&s(&["-x"]), SPEC).unwrap_err(),
            ToolErr::Usage("option provided but not defined: -x".into())
        );
        assert!(matches!(
            parse(&s(&["--app=maybe"]), SPEC),
            Err(ToolErr::Usage(_))
        ));
        assert_eq!(
            parse(&s(&["-r"]), SPEC).unwrap_err(),
            ToolErr::Usage("option needs an argument: -r".into())
        );
    }
}
