//! The program the child execs: argv, envp and the PATH candidates, prepared by the parent;
//! the child looks the candidates up and execs without allocating.

use std::ffi::{CStr, CString, c_char};

use anyhow::{Context, bail};
use rustix::io::Errno;

use super::{STEP_EXECVE, STEP_NOT_FOUND, last_errno};
use crate::sys::ChildError;

/// The program to exec: argv, envp and PATH candidates, all prepared by the parent.
pub struct Program {
    /// `args[0]` as the user wrote it (for the not-found message).
    pub name: String,
    candidates: Vec<CString>,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("candidates", &self.candidates)
            .finish_non_exhaustive()
    }
}

impl Program {
    /// Prepares `args` and `env`; a bare name is looked up in the `PATH` of `env` (or the
    /// default PATH) inside the container.
    pub fn new(args: &[String], env: &[String]) -> anyhow::Result<Self> {
        let Some(name) = args.first() else {
            bail!("process.args: empty (the container needs a program to run)");
        };
        let cstr = |s: &str, what: &str| {
            CString::new(s).with_context(|| format!("{what} {s:?} contains a NUL byte"))
        };
        let argv = args
            .iter()
            .map(|a| cstr(a, "process.args entry"))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = env
            .iter()
            .map(|e| cstr(e, "process.env entry"))
            .collect::<Result<Vec<_>, _>>()?;
        let candidates = if name.contains('/') {
            vec![cstr(name, "process.args[0]")?]
        } else {
            let path = env
                .iter()
                .rev()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            path.split(':')
                .map(|dir| {
                    let dir = if dir.is_empty() { "." } else { dir };
                    cstr(
                        &format!("{}/{name}", dir.trim_end_matches('/')),
                        "PATH candidate",
                    )
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Ok(Self {
            name: name.clone(),
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envp),
            candidates,
            _argv: argv,
            _envp: envp,
        })
    }

    /// The message for a [`STEP_NOT_FOUND`] error, in runc's words.
    pub fn not_found_message(&self, errno: i32) -> String {
        if self.name.contains('/') {
            let err = std::io::Error::from_raw_os_error(errno);
            format!(
                "exec: {:?}: stat {}: {}",
                self.name,
                self.name,
                lower_first(&err)
            )
        } else {
            format!("exec: {:?}: executable file not found in $PATH", self.name)
        }
    }

    /// Child side: the first candidate that is an executable regular file.
    pub(super) fn lookup(&self) -> Result<&CStr, ChildError> {
        let mut last = Errno::NOENT;
        for c in &self.candidates {
            match rustix::fs::stat(c.as_c_str()) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {
                    match rustix::fs::access(c.as_c_str(), rustix::fs::Access::EXEC_OK) {
                        Ok(()) => return Ok(c.as_c_str()),
                        Err(e) => last = e,
                    }
                }
                Ok(_) => last = Errno::ACCESS,
                Err(e) => {
                    if e != Errno::NOENT && e != Errno::NOTDIR {
                        last = e;
                    }
                }
            }
        }
        Err(ChildError::new(STEP_NOT_FOUND, last, 0))
    }

    #[allow(unsafe_code)]
    pub(super) fn execve(&self, exe: &CStr) -> ChildError {
        // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings owned by the
        // plan, which lives (in this copy of the address space) until execve replaces it.
        unsafe {
            libc::execve(
                exe.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            )
        };
        ChildError {
            step: STEP_EXECVE,
            errno: last_errno(),
            index: 0,
        }
    }
}

fn lower_first(e: &std::io::Error) -> String {
    // Go's messages are lower-case ("no such file or directory").
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_looked_up_in_the_containers_path() {
        let env = vec!["A=1".to_string(), "PATH=/x/bin::/y/".to_string()];
        let p = Program::new(&["sh".into(), "-c".into()], &env).unwrap();
        let c: Vec<_> = p.candidates.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(c, ["/x/bin/sh", "./sh", "/y/sh"]);
        assert_eq!(p.argv_ptrs.len(), 3);
        assert!(p.argv_ptrs[2].is_null());
        let p = Program::new(&["/bin/true".into()], &[]).unwrap();
        assert_eq!(p.candidates, [c"/bin/true".to_owned()]);
    }

    #[test]
    fn not_found_messages_match_runc() {
        let p = Program::new(&["foo".into()], &[]).unwrap();
        assert_eq!(
            p.not_found_message(libc::ENOENT),
            "exec: \"foo\": executable file not found in $PATH"
        );
        let p = Program::new(&["/x/foo".into()], &[]).unwrap();
        assert_eq!(
            p.not_found_message(libc::ENOENT),
            "exec: \"/x/foo\": stat /x/foo: no such file or directory"
        );
    }

    #[test]
    fn lookup_skips_missing_and_non_executable_candidates() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(a.join("prog")).unwrap(); // a directory is not a program
        std::fs::create_dir_all(&b).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(b.join("prog"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("prog"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("PATH=/nonexistent:{}:{}", a.display(), b.display());
        let p = Program::new(&["prog".into()], std::slice::from_ref(&path)).unwrap();
        assert_eq!(
            p.lookup().unwrap().to_str().unwrap(),
            b.join("prog").to_str().unwrap()
        );
        // Negative control: without the executable directory nothing is found.
        let p = Program::new(&["prog".into()], &[format!("PATH={}", a.display())]).unwrap();
        assert_eq!(p.lookup().unwrap_err().step, STEP_NOT_FOUND);
    }
}
