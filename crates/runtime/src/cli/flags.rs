//! Go-style flag parsing, as runc's CLI (urfave/cli on Go's `flag`) accepts it: `-flag`,
//! `--flag`, `-flag=value`, `--flag value`; boolean flags take no separate value (but accept
//! `--flag=true|false`); parsing stops at the first argument that is not a flag, or after `--`.

use std::collections::HashMap;

use anyhow::bail;

/// One flag: its names (without dashes) and whether it takes a value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flag {
    pub(crate) names: &'static [&'static str],
    pub(crate) value: bool,
}

/// A boolean flag.
pub(crate) const fn switch(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        value: false,
    }
}

/// A flag with a value (repeatable: every value is kept).
pub(crate) const fn opt(names: &'static [&'static str]) -> Flag {
    Flag { names, value: true }
}

/// The parsed flags (keyed by each flag's first name) and the remaining arguments.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
    /// The arguments after the flags.
    pub(crate) rest: Vec<String>,
}

impl Parsed {
    /// The last value of a value flag.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable flag.
    pub(crate) fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether a boolean flag is set (its last `=value` wins).
    pub(crate) fn on(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "true")
    }
}

/// Parses `args` against `flags`.
pub(crate) fn parse(args: &[String], flags: &[Flag]) -> anyhow::Result<Parsed> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let body = arg.trim_start_matches('-');
        if arg.starts_with("---") || body.is_empty() {
            bail!("bad flag syntax: {arg}");
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(flag) = flags.iter().find(|f| f.names.contains(&name)) else {
            bail!("flag provided but not defined: -{name}");
        };
        let value = if flag.value {
            match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    match args.get(i) {
                        Some(v) => v.clone(),
                        None => bail!("flag needs an argument: -{name}"),
                    }
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") | Some("1") => "true".to_string(),
                Some("false") | Some("0") => "false".to_string(),
                Some(v) => bail!("invalid boolean value {v:?} for -{name}"),
            }
        };
        out.values.entry(flag.names[0]).or_default().push(value);
        i += 1;
    }
    out.rest = args[i..].to_vec();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        opt(&["bundle", "b"]),
        switch(&["detach", "d"]),
        opt(&["env", "e"]),
    ];

    fn p(args: &[&str]) -> anyhow::Result<Parsed> {
        parse(
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            FLAGS,
        )
    }

    #[test]
    fn go_style_forms_are_accepted() {
        for args in [
            &["-b", "/x", "-d", "id"][..],
            &["--bundle=/x", "--detach", "id"],
            &["-bundle", "/x", "-detach=true", "id"],
            &["--b", "/x", "-d", "--", "id"],
        ] {
            let r = p(args).unwrap();
            assert_eq!(r.get("bundle"), Some("/x"), "{args:?}");
            assert!(r.on("detach"), "{args:?}");
            assert_eq!(r.rest, ["id"], "{args:?}");
        }
    }

    #[test]
    fn parsing_stops_at_the_first_positional() {
        let r = p(&["-e", "A=1", "--env=B=2", "id", "sh", "-c", "-d"]).unwrap();
        assert_eq!(r.all("env"), ["A=1", "B=2"]);
        assert!(!r.on("detach"));
        assert_eq!(r.rest, ["id", "sh", "-c", "-d"]);
    }

    #[test]
    fn bad_flags_are_named() {
        assert_eq!(
            p(&["--nope"]).unwrap_err().to_string(),
            "flag provided but not defined: -nope"
        );
        assert_eq!(
            p(&["-b"]).unwrap_err().to_string(),
            "flag needs an argument: -b"
        );
        assert!(p(&["-d=maybe"]).is_err());
        assert!(!p(&["-d=false", "x"]).unwrap().on("detach"));
    }
}
