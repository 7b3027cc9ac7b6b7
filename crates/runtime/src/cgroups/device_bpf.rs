//! Device rules on cgroup v2: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`, attached
//! to the container's unified directory.
//!
//! The kernel calls the program with `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }` (`access_type` = access bits << 16 | device type) for every device open and
//! mknod; 0 refuses with EPERM, 1 allows. The program evaluates the same rule list as the v1
//! controller gets (deny all, the spec's rules, runc's defaults) the way v1 does: the **last**
//! rule that matches decides, and an `a` rule matches every device and access.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{CgroupError, devices};

/// One `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    /// dst register in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_X: u8 = 0xbc;
const ALU64_MOV_K: u8 = 0xb7;
const JMP_JNE_K: u8 = 0x55; // if dst != imm goto pc + 1 + off
const JMP_EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// A rule as the program checks it: `None` type is `a` (everything).
struct Rule {
    allow: bool,
    typ: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: i32,
}

fn parse(r: &LinuxDeviceCgroup) -> Result<Rule, CgroupError> {
    // rule_string validates type, numbers and access the same way as for v1.
    devices::rule_string(r)?;
    let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(DEV_BLOCK),
        _ => Some(DEV_CHAR),
    };
    let num = |n: Option<i64>| n.filter(|&n| n >= 0).map(|n| n as i32);
    let access_str = r.access().clone().filter(|a| !a.is_empty());
    let access = access_str
        .as_deref()
        .unwrap_or("rwm")
        .chars()
        .fold(0, |acc, c| {
            acc | match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => ACC_MKNOD,
            }
        });
    Ok(Rule {
        allow: r.allow(),
        typ,
        major: num(r.major()),
        minor: num(r.minor()),
        access,
    })
}

/// The program for the full rule list (deny all, `rules`, runc's defaults).
pub(crate) fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, CgroupError> {
    let mut all = vec![LinuxDeviceCgroup::default()]; // allow: false, type a: deny everything
    all.extend(rules.iter().cloned());
    all.extend(devices::default_allowed_devices());
    let parsed = all.iter().map(parse).collect::<Result<Vec<_>, _>>()?;

    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),        // r2 = access_type
        insn(ALU32_AND_K, 2, 0, 0, 0xffff), // r2 = device type
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16), // r3 = access bits
        insn(LDX_MEM_W, 4, 1, 4, 0),    // r4 = major
        insn(LDX_MEM_W, 5, 1, 8, 0),    // r5 = minor
    ];
    // Last rule first: the first block that matches returns its verdict.
    for r in parsed.iter().rev() {
        let mut checks: Vec<(u8, i32)> = Vec::new(); // (register, value) that must be equal
        if let Some(t) = r.typ {
            checks.push((2, t));
            if let Some(m) = r.major {
                checks.push((4, m));
            }
            if let Some(m) = r.minor {
                checks.push((5, m));
            }
        }
        let partial_access = r.typ.is_some() && r.access != 7;
        let len = checks.len() + if partial_access { 3 } else { 0 } + 2;
        let mut left = len as i16;
        for (reg, v) in checks {
            left -= 1;
            p.push(insn(JMP_JNE_K, reg, 0, left, v));
        }
        if partial_access {
            // Requested bits outside the rule's bits: the rule does not cover this access.
            p.push(insn(ALU32_MOV_X, 6, 3, 0, 0));
            p.push(insn(ALU32_AND_K, 6, 0, 0, !r.access & 7));
            left -= 3;
            p.push(insn(JMP_JNE_K, 6, 0, left, 0));
        }
        p.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
        p.push(insn(JMP_EXIT, 0, 0, 0, 0));
        if r.typ.is_none() {
            // Matches everything: earlier rules are unreachable, and the verifier refuses
            // unreachable instructions. The list starts with deny-all, so this always ends it.
            return Ok(p);
        }
    }
    unreachable!("the rule list starts with a deny-all `a` rule")
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The leading fields of `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The leading fields of `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Loads the program for `rules` and attaches it to the cgroup v2 directory `dir`. The program
/// stays attached after its fd is closed and goes away with the directory.
#[allow(unsafe_code)]
pub fn attach_device_filter(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let prog = program(rules)?;
    let mut log = vec![0u8; 64 * 1024];
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"drover_device");
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid prefix of `union bpf_attr` for BPF_PROG_LOAD (the kernel zero-
    // fills the rest of the union for the size we pass); `insns`, `license` and `log_buf` point
    // at live buffers of the stated sizes for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>() as u32,
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let verifier = String::from_utf8_lossy(&log[..end]);
        return Err(CgroupError::Unsupported {
            what: format!(
                "device rules on cgroup v2 need a BPF_PROG_TYPE_CGROUP_DEVICE program, and \
                 loading it failed: {err}; verifier log: {}",
                verifier.trim()
            ),
        });
    }
    // SAFETY: a successful BPF_PROG_LOAD returns a new fd that nothing else owns.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let dir_file = std::fs::File::open(dir).map_err(|source| CgroupError::Io {
        op: "open",
        path: dir.to_path_buf(),
        source,
    })?;
    let attach = ProgAttachAttr {
        target_fd: dir_file.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: `attach` is a valid prefix of `union bpf_attr` for BPF_PROG_ATTACH; both fds are
    // open for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttachAttr,
            std::mem::size_of::<ProgAttachAttr>() as u32,
        )
    };
    if r != 0 {
        return Err(CgroupError::Io {
            op: "attach the device BPF program to",
            path: dir.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program the way the kernel would for one access.
    fn run(p: &[Insn], typ: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | typ as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP_JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc = (pc as isize + isize::from(i.off)) as usize;
                    }
                }
                JMP_EXIT => return r[0],
                other => panic!("opcode {other:#x}"),
            }
            assert!(pc < p.len(), "ran off the end");
        }
    }

    fn rule(
        allow: bool,
        t: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        a: &str,
    ) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(Some(t));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(a.to_string()));
        r
    }

    #[test]
    fn defaults_allow_the_standard_devices_and_deny_the_rest() {
        let p = program(&[]).unwrap();
        assert_eq!(
            run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3),
            1,
            "/dev/null"
        );
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 136, 7), 1, "/dev/pts/7");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 1), 0, "/dev/mem");
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 0, "/dev/sda");
        assert_eq!(run(&p, DEV_BLOCK, ACC_MKNOD, 8, 0), 1, "mknod of anything");
    }

    #[test]
    fn the_last_matching_rule_wins_and_partial_access_is_respected() {
        let rules = [
            rule(true, LinuxDeviceType::B, Some(8), None, "rw"),
            rule(false, LinuxDeviceType::B, Some(8), Some(1), "w"),
        ];
        let p = program(&rules).unwrap();
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 1);
        assert_eq!(
            run(&p, DEV_BLOCK, ACC_WRITE, 8, 1),
            0,
            "the later deny of w"
        );
        assert_eq!(
            run(&p, DEV_BLOCK, ACC_READ, 8, 1),
            1,
            "the deny covers only w"
        );
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 9, 0), 0, "another major");
        // An allow-all rule in the spec opens everything (the defaults only add allows).
        let p = program(&[rule(true, LinuxDeviceType::A, None, None, "rwm")]).unwrap();
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 0), 1);
    }
}
