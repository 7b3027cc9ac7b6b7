//! OCI `linux.seccomp` → a classic BPF program.
//!
//! Layout of the generated program (forward order):
//!
//! ```text
//!     ld  [arch]            ; seccomp_data.arch
//!     jeq NATIVE, native    ; x86_64 (or aarch64)
//!     jeq I386, i386        ; only when the profile lists SCMP_ARCH_X86
//!     ret KILL_PROCESS      ; any other ABI: the bad-arch action
//!   native:
//!     ld  [nr]
//!     jge 0x40000000, bad   ; x86_64 only: the x32 ABI bit
//!     <binary search over the listed syscall numbers (jge splits, jeq leaves)>
//!   i386: the same with the i386 numbers
//!   body(nr):               ; the syscall's rules, first match wins
//!     <arg checks of rule 1> → ret action1, else rule 2 … else ret default
//!   default: ret DEFAULT
//!   bad:     ret KILL_PROCESS
//! ```
//!
//! Rules for one syscall are tried in the order the profile lists them; the first whose every
//! argument condition holds gives the action. A 64-bit argument is compared as its high and low
//! 32-bit words (`seccomp_data.args` are 64-bit, classic BPF loads 32 bits).

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use super::bpf::{Asm, Insn, JMP_JEQ_K, JMP_JGE_K, JMP_JGT_K, Label, MAX_INSNS};
use super::syscalls::{self, Abi};
use super::{Program, SeccompError};

/// The kernel's `AUDIT_ARCH_*` of the architecture this binary runs on.
#[cfg(target_arch = "x86_64")]
pub const NATIVE_AUDIT_ARCH: u32 = 0xc000_003e;
/// The kernel's `AUDIT_ARCH_*` of the architecture this binary runs on.
#[cfg(target_arch = "aarch64")]
pub const NATIVE_AUDIT_ARCH: u32 = 0xc000_00b7;

/// The OCI architecture this binary's syscall table is for.
#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: Arch = Arch::ScmpArchX86_64;
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: Arch = Arch::ScmpArchAarch64;

/// `AUDIT_ARCH_I386`: i386 programs on an x86_64 kernel.
pub const I386_AUDIT_ARCH: u32 = 0x4000_0003;

/// Syscall numbers with this bit set are x32 ABI calls (`__X32_SYSCALL_BIT`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What a syscall from a foreign architecture (or the x32 ABI) gets: libseccomp's default
/// "bad arch" action kills; we kill the whole process rather than one thread.
pub const BAD_ARCH_ACTION: u32 = 0x8000_0000;

const RET_KILL_THREAD: u32 = 0;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// How many syscalls a leaf of the dispatch tree checks one by one.
const LEAF: usize = 4;

/// One argument condition, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cond {
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

/// The rules of one ABI, by syscall number.
struct AbiRules {
    abi: Abi,
    audit_arch: u32,
    by_nr: BTreeMap<u32, Vec<Rule>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    conds: Vec<Cond>,
    ret: u32,
}

/// Compiles `spec` for the native architecture.
pub fn compile(spec: &LinuxSeccomp) -> Result<Program, SeccompError> {
    if spec.listener_path().is_some() {
        return Err(SeccompError::Unsupported {
            what: "linux.seccomp.listenerPath (seccomp user notification)".into(),
        });
    }
    let default = action(
        spec.default_action(),
        spec.default_errno_ret(),
        "defaultAction",
    )?;
    let mut flags = 0u32;
    for f in spec.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
        };
    }
    let with_i386 = cfg!(target_arch = "x86_64")
        && spec
            .architectures()
            .iter()
            .flatten()
            .any(|a| *a == Arch::ScmpArchX86);
    let mut notes = Vec::new();
    for a in spec.architectures().iter().flatten() {
        let compiled = *a == NATIVE_ARCH
            || *a == Arch::ScmpArchNative
            || (with_i386 && *a == Arch::ScmpArchX86);
        if !compiled {
            notes.push(format!(
                "architecture {a} is not compiled: its syscalls get the bad-arch action (kill)"
            ));
        }
    }
    let mut abis = vec![AbiRules {
        abi: Abi::Native,
        audit_arch: NATIVE_AUDIT_ARCH,
        by_nr: BTreeMap::new(),
    }];
    if with_i386 {
        abis.push(AbiRules {
            abi: Abi::I386,
            audit_arch: I386_AUDIT_ARCH,
            by_nr: BTreeMap::new(),
        });
    }
    let mut unknown: Vec<String> = Vec::new();
    for (i, sc) in spec.syscalls().iter().flatten().enumerate() {
        let ret = action(sc.action(), sc.errno_ret(), &format!("syscalls[{i}]"))?;
        let conds = conditions(i, sc.args().as_deref().unwrap_or_default())?;
        for name in sc.names() {
            let mut known = false;
            for a in &mut abis {
                if let Some(nr) = syscalls::number_in(a.abi, name) {
                    known = true;
                    let rules = a.by_nr.entry(nr).or_default();
                    rules.push(Rule {
                        conds: conds.clone(),
                        ret,
                    });
                }
            }
            if !known && !unknown.contains(name) {
                unknown.push(name.clone());
            }
        }
    }
    // A syscall whose first rule unconditionally gives the default needs no entry.
    for a in &mut abis {
        a.by_nr.retain(|_, rules: &mut Vec<Rule>| {
            !(rules[0].conds.is_empty() && rules[0].ret == default)
        });
    }
    let insns = emit(&abis, default);
    if insns.len() > MAX_INSNS {
        return Err(SeccompError::TooLong { len: insns.len() });
    }
    Ok(Program {
        insns,
        flags,
        unknown_names: unknown,
        notes,
    })
}

/// The argument conditions of rule `i`, checked.
fn conditions(
    i: usize,
    args: &[oci_spec::runtime::LinuxSeccompArg],
) -> Result<Vec<Cond>, SeccompError> {
    args.iter()
        .map(|a| {
            if a.index() > 5 {
                return Err(SeccompError::BadArg {
                    rule: i,
                    reason: format!("argument index {} is above 5", a.index()),
                });
            }
            Ok(Cond {
                index: a.index() as u32,
                op: a.op(),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            })
        })
        .collect()
}

/// The `SECCOMP_RET_*` value of an OCI action.
fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<u32, SeccompError> {
    if let Some(e) = errno.filter(|&e| e > 0xffff) {
        return Err(SeccompError::Unsupported {
            what: format!("{field}: errnoRet {e} (the filter's return data has 16 bits)"),
        });
    }
    let data = |errno: Option<u32>| errno.unwrap_or(libc::EPERM as u32);
    let needs_no_errno = |v: u32| {
        if errno.is_some() {
            Err(SeccompError::Unsupported {
                what: format!(
                    "{field}: errnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE (got {a:?})"
                ),
            })
        } else {
            Ok(v)
        }
    };
    match a {
        LinuxSeccompAction::ScmpActAllow => needs_no_errno(RET_ALLOW),
        LinuxSeccompAction::ScmpActLog => needs_no_errno(RET_LOG),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            needs_no_errno(RET_KILL_THREAD)
        }
        LinuxSeccompAction::ScmpActKillProcess => needs_no_errno(RET_KILL_PROCESS),
        LinuxSeccompAction::ScmpActTrap => needs_no_errno(RET_TRAP),
        LinuxSeccompAction::ScmpActErrno => Ok(RET_ERRNO | data(errno)),
        LinuxSeccompAction::ScmpActTrace => Ok(RET_TRACE | data(errno)),
        LinuxSeccompAction::ScmpActNotify => Err(SeccompError::Unsupported {
            what: format!("{field}: SCMP_ACT_NOTIFY (seccomp user notification)"),
        }),
    }
}

/// Where the dispatch sends a syscall: its rule chain, or straight to an action when its first
/// rule has no conditions (the common case: the big allow list).
#[derive(Clone, Copy)]
enum Target {
    Body(Label),
    Ret(u32),
}

fn emit(abis: &[AbiRules], default: u32) -> Vec<Insn> {
    let mut asm = Asm::default();
    let bad = asm.ret(BAD_ARCH_ACTION);
    let dflt = asm.ret(default);
    let starts: Vec<(u32, Label)> = abis
        .iter()
        .rev()
        .map(|a| {
            let x32_check = cfg!(target_arch = "x86_64") && a.abi == Abi::Native;
            let start = emit_abi(&mut asm, &a.by_nr, default, dflt, bad, x32_check);
            (a.audit_arch, start)
        })
        .collect();
    // starts is in reverse ABI order: fold so the native ABI is checked first.
    starts.iter().fold(bad, |next, &(audit, start)| {
        asm.jump(JMP_JEQ_K, audit, start, next)
    });
    asm.load(4);
    asm.finish()
}

/// One ABI's part: load the number, (x86_64) refuse the x32 bit, search, rule bodies. Returns
/// the label of its first instruction.
fn emit_abi(
    asm: &mut Asm,
    by_nr: &BTreeMap<u32, Vec<Rule>>,
    default: u32,
    dflt: Label,
    bad: Label,
    x32_check: bool,
) -> Label {
    let mut entries: Vec<(u32, Target)> = Vec::with_capacity(by_nr.len());
    for (&nr, rules) in by_nr.iter().rev() {
        if rules[0].conds.is_empty() {
            entries.push((nr, Target::Ret(rules[0].ret)));
            continue;
        }
        let mut next = dflt;
        for rule in rules.iter().rev() {
            let pass = asm.ret(rule.ret);
            next = rule
                .conds
                .iter()
                .rev()
                .fold(pass, |pass, c| emit_cond(asm, c, pass, next));
        }
        entries.push((nr, Target::Body(next)));
    }
    entries.reverse();
    let tree = emit_tree(asm, &entries, default);
    if x32_check {
        asm.jump(JMP_JGE_K, X32_SYSCALL_BIT, bad, tree);
    }
    asm.load(0)
}

/// A binary search on the syscall number in A. Each leaf checks a few numbers one by one and
/// has its own `ret` instructions right behind it (the default for numbers not listed, and each
/// action its syscalls return directly), so most syscalls never take a long jump.
fn emit_tree(asm: &mut Asm, entries: &[(u32, Target)], default: u32) -> Label {
    if entries.len() <= LEAF {
        let mut rets: Vec<(u32, Label)> = vec![(default, asm.ret(default))];
        for (_, t) in entries {
            if let Target::Ret(v) = *t
                && !rets.iter().any(|(r, _)| *r == v)
            {
                let l = asm.ret(v);
                rets.push((v, l));
            }
        }
        let ret_of = |v: u32| rets.iter().find(|(r, _)| *r == v).map(|(_, l)| *l);
        let miss = rets[0].1;
        return entries.iter().rev().fold(miss, |next, &(nr, t)| {
            let target = match t {
                Target::Body(l) => l,
                Target::Ret(v) => ret_of(v).expect("emitted above"),
            };
            asm.jump(JMP_JEQ_K, nr, target, next)
        });
    }
    let mid = entries.len() / 2;
    let upper = emit_tree(asm, &entries[mid..], default);
    let lower = emit_tree(asm, &entries[..mid], default);
    asm.jump(JMP_JGE_K, entries[mid].0, upper, lower)
}

/// Offsets of the low and high words of argument `i` in `seccomp_data`.
fn arg_words(i: u32) -> (u32, u32) {
    let base = 16 + 8 * i;
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

/// One 64-bit comparison: jumps to `pass` when it holds, else to `fail`.
fn emit_cond(asm: &mut Asm, c: &Cond, pass: Label, fail: Label) -> Label {
    let (lo_off, hi_off) = arg_words(c.index);
    let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
    use LinuxSeccompOperator as Op;
    match c.op {
        Op::ScmpCmpEq | Op::ScmpCmpNe => {
            // EQ: hi == and lo == ; NE is EQ with the outcomes swapped.
            let (eq, ne) = if c.op == Op::ScmpCmpEq {
                (pass, fail)
            } else {
                (fail, pass)
            };
            asm.jump(JMP_JEQ_K, lo, eq, ne);
            let ld_lo = asm.load(lo_off);
            asm.jump(JMP_JEQ_K, hi, ld_lo, ne);
            asm.load(hi_off)
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe | Op::ScmpCmpLt | Op::ScmpCmpLe => {
            // GT/GE directly; LT = !GE and LE = !GT with the outcomes swapped.
            let (lo_code, yes, no) = match c.op {
                Op::ScmpCmpGt => (JMP_JGT_K, pass, fail),
                Op::ScmpCmpGe => (JMP_JGE_K, pass, fail),
                Op::ScmpCmpLt => (JMP_JGE_K, fail, pass),
                _ => (JMP_JGT_K, fail, pass),
            };
            asm.jump(lo_code, lo, yes, no);
            let ld_lo = asm.load(lo_off);
            let hi_eq = asm.jump(JMP_JEQ_K, hi, ld_lo, no);
            asm.jump(JMP_JGT_K, hi, yes, hi_eq);
            asm.load(hi_off)
        }
        Op::ScmpCmpMaskedEq => {
            let (mh, ml) = ((c.value >> 32) as u32, c.value as u32);
            let (dh, dl) = ((c.value_two >> 32) as u32, c.value_two as u32);
            asm.jump(JMP_JEQ_K, dl, pass, fail);
            asm.and(ml);
            let ld_lo = asm.load(lo_off);
            asm.jump(JMP_JEQ_K, dh, ld_lo, fail);
            asm.and(mh);
            asm.load(hi_off)
        }
    }
}
