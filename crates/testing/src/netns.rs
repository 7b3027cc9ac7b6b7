//! A network namespace made for one test: `drover-test-<random>`, with only `lo`, up, and no
//! route anywhere else. Deleted on drop.

use std::io::Read;
use std::process::Command;

use crate::HarnessError;

/// Prefix of every network namespace this crate makes (the leftover check looks for it).
pub const NETNS_PREFIX: &str = "drover-test-";

/// A named network namespace (`ip netns add`), deleted (`ip netns delete`) on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `drover-test-<tag>-<random>` with `lo` up. Needs root and `ip` (iproute2).
    pub fn create(tag: &str) -> Result<Self, HarnessError> {
        if !crate::have_program("ip") {
            return Err(HarnessError::MissingPeer {
                program: "ip".into(),
                hint: "apt-get install iproute2",
            });
        }
        let name = format!("{NETNS_PREFIX}{tag}-{}", random_hex()?);
        run(Command::new("ip").args(["netns", "add", &name]))?;
        // From here on, a failure still deletes the namespace (Drop).
        let ns = Self { name };
        run(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns list` shows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace (`ip netns exec NAME program`).
    /// `ip netns exec` replaces itself with the program, so the child's PID is the program's.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// The interface names inside the namespace (`ip -o link`).
    pub fn links(&self) -> Result<Vec<String>, HarnessError> {
        let out = run(Command::new("ip").args(["-n", &self.name, "-o", "link", "show"]))?;
        Ok(out
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect())
    }

    /// The routes of the main table inside the namespace (`ip route show`), one per line.
    pub fn routes(&self) -> Result<Vec<String>, HarnessError> {
        let out = run(Command::new("ip").args(["-n", &self.name, "route", "show"]))?;
        let mut routes: Vec<String> = out.lines().map(str::to_string).collect();
        let v6 = run(Command::new("ip").args(["-n", &self.name, "-6", "route", "show"]))?;
        routes.extend(v6.lines().map(str::to_string));
        Ok(routes)
    }

    /// Whether a namespace of this name exists (`ip netns list`).
    pub fn exists(name: &str) -> bool {
        Self::list().is_ok_and(|names| names.iter().any(|n| n == name))
    }

    /// Names of all network namespaces on the host (`ip netns list`, first column).
    pub fn list() -> Result<Vec<String>, HarnessError> {
        let out = run(Command::new("ip").args(["netns", "list"]))?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run(Command::new("ip").args(["netns", "delete", &self.name])) {
            eprintln!(
                "drover-testing: could not delete network namespace {}: {e}",
                self.name
            );
        }
    }
}

fn random_hex() -> Result<String, HarnessError> {
    let mut bytes = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| HarnessError::Io {
            what: "read /dev/urandom".into(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn run(cmd: &mut Command) -> Result<String, HarnessError> {
    let line = command_line(cmd);
    let out = cmd.output().map_err(|e| HarnessError::Command {
        command: line.clone(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(HarnessError::Command {
            command: line,
            detail: format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
