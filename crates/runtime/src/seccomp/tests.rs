//! Compiler tests: every program runs through the BPF interpreter in [`super::bpf`] on
//! synthetic `seccomp_data`, and is checked against a direct evaluation of the OCI rules.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use serde_json::{Value, json};

use super::bpf::{Insn, JMP_JGE_K, JMP_JGT_K, SeccompData, run, run_counting};
use super::*;

const ALLOW: u32 = 0x7fff_0000;
const ERRNO: u32 = 0x0005_0000;
const KILL_PROCESS: u32 = 0x8000_0000;

fn spec(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

fn nr(name: &str) -> i32 {
    syscall_number(name).unwrap_or_else(|| panic!("{name} not in the table")) as i32
}

fn call(name: &str, args: [u64; 6]) -> SeccompData {
    SeccompData {
        nr: nr(name),
        arch: NATIVE_AUDIT_ARCH,
        args,
        ..Default::default()
    }
}

fn caps(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

// === the reference: OCI rules evaluated directly ===

fn op_holds(op: LinuxSeccompOperator, arg: u64, value: u64, two: u64) -> bool {
    use LinuxSeccompOperator as O;
    match op {
        O::ScmpCmpEq => arg == value,
        O::ScmpCmpNe => arg != value,
        O::ScmpCmpLt => arg < value,
        O::ScmpCmpLe => arg <= value,
        O::ScmpCmpGt => arg > value,
        O::ScmpCmpGe => arg >= value,
        O::ScmpCmpMaskedEq => arg & value == two,
    }
}

fn ret_of(a: LinuxSeccompAction, errno: Option<u32>) -> u32 {
    match a {
        LinuxSeccompAction::ScmpActAllow => ALLOW,
        LinuxSeccompAction::ScmpActErrno => ERRNO | errno.unwrap_or(1),
        LinuxSeccompAction::ScmpActKillProcess => KILL_PROCESS,
        LinuxSeccompAction::ScmpActLog => 0x7ffc_0000,
        LinuxSeccompAction::ScmpActTrap => 0x0003_0000,
        other => panic!("reference does not model {other:?}"),
    }
}

fn reference(s: &LinuxSeccomp, d: &SeccompData) -> u32 {
    let lists_x86 = s
        .architectures()
        .iter()
        .flatten()
        .any(|a| *a == oci_spec::runtime::Arch::ScmpArchX86);
    let abi = if d.arch == NATIVE_AUDIT_ARCH {
        if cfg!(target_arch = "x86_64") && d.nr as u32 >= X32_SYSCALL_BIT {
            return KILL_PROCESS;
        }
        Abi::Native
    } else if d.arch == I386_AUDIT_ARCH && lists_x86 && cfg!(target_arch = "x86_64") {
        Abi::I386
    } else {
        return KILL_PROCESS;
    };
    for sc in s.syscalls().iter().flatten() {
        let listed = sc
            .names()
            .iter()
            .any(|n| syscall_number_in(abi, n) == Some(d.nr as u32));
        let holds = sc.args().iter().flatten().all(|a| {
            op_holds(
                a.op(),
                d.args[a.index()],
                a.value(),
                a.value_two().unwrap_or(0),
            )
        });
        if listed && holds {
            return ret_of(sc.action(), sc.errno_ret());
        }
    }
    ret_of(s.default_action(), s.default_errno_ret())
}

/// Interesting argument values around the profile's constants (and their 64-bit neighbours).
fn probe_values(s: &LinuxSeccomp) -> Vec<u64> {
    let mut v = vec![0, 1, u64::MAX, 0xffff_ffff, 0x1_0000_0000];
    for a in s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|sc| sc.args().iter().flatten())
    {
        for x in [a.value(), a.value_two().unwrap_or(0)] {
            v.extend([
                x,
                x.wrapping_add(1),
                x.wrapping_sub(1),
                x ^ (1 << 32),
                x | (1 << 63),
            ]);
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Compares `prog` with the reference on every syscall number 0..512 (no args) of the native,
/// i386 and ARM ABIs, and on every listed syscall with the probe values in each argument. Returns the first disagreement.
fn check_against_reference(s: &LinuxSeccomp, prog: &[Insn]) -> Result<usize, String> {
    let mut n = 0;
    let mut probe = |d: SeccompData| {
        let (got, want) = (run(prog, &d), reference(s, &d));
        n += 1;
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "arch {:#x} nr {} args {:x?}: program {got:#x}, rules {want:#x}",
                d.arch, d.nr, d.args
            ))
        }
    };
    for arch in [NATIVE_AUDIT_ARCH, I386_AUDIT_ARCH, 0x4000_0028] {
        for nr in 0..512 {
            probe(SeccompData {
                nr,
                arch,
                ..Default::default()
            })?;
        }
    }
    let values = probe_values(s);
    for sc in s
        .syscalls()
        .iter()
        .flatten()
        .filter(|sc| sc.args().is_some())
    {
        for name in sc.names() {
            let targets = [
                (Abi::Native, NATIVE_AUDIT_ARCH),
                (Abi::I386, I386_AUDIT_ARCH),
            ];
            for (abi, arch) in targets {
                let Some(nr) = syscall_number_in(abi, name) else {
                    continue;
                };
                for i in 0..6 {
                    for &v in &values {
                        let mut args = [0u64; 6];
                        args[i] = v;
                        // Also set the other arguments the rules look at, to reach AND-ed conditions.
                        for a in sc.args().iter().flatten().filter(|a| a.index() != i) {
                            args[a.index()] = a.value();
                        }
                        probe(SeccompData {
                            nr: nr as i32,
                            arch,
                            args,
                            ..Default::default()
                        })?;
                    }
                }
            }
        }
    }
    Ok(n)
}

// === the compiler ===

#[test]
fn allowed_listed_unlisted_and_errno_syscalls_get_their_actions() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [
            {"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
        ]
    }));
    let p = compile(&s).unwrap();
    assert_eq!(run(p.instructions(), &call("getpid", [0; 6])), ALLOW);
    assert_eq!(run(p.instructions(), &call("read", [0; 6])), ALLOW);
    assert_eq!(run(p.instructions(), &call("mount", [0; 6])), ERRNO | 1);
    assert_eq!(run(p.instructions(), &call("reboot", [0; 6])), KILL_PROCESS);
    assert_eq!(
        run(p.instructions(), &call("write", [0; 6])),
        ERRNO | 38,
        "unlisted → ENOSYS"
    );
}

#[test]
fn foreign_architectures_and_the_x32_abi_are_killed() {
    let s = spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}));
    let p = compile(&s).unwrap();
    let i386 = SeccompData {
        nr: 1,
        arch: 0x4000_0003,
        ..Default::default()
    };
    assert_eq!(run(p.instructions(), &i386), BAD_ARCH_ACTION);
    if cfg!(target_arch = "x86_64") {
        // x32's getpid: the x86_64 arch value with the x32 bit in the number. Without the check
        // a blocklist profile (default ALLOW) would let x32 calls of blocked syscalls through.
        let x32_mount = SeccompData {
            nr: (X32_SYSCALL_BIT | nr("mount") as u32) as i32,
            arch: NATIVE_AUDIT_ARCH,
            ..Default::default()
        };
        assert_eq!(run(p.instructions(), &x32_mount), BAD_ARCH_ACTION);
    }
    assert_eq!(run(p.instructions(), &call("mount", [0; 6])), ERRNO | 1);
    assert_eq!(run(p.instructions(), &call("getpid", [0; 6])), ALLOW);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_calls_get_the_profiles_rules_with_i386_numbers_when_x86_is_listed() {
    let p = compile(&default_profile(&caps(PODMAN_DEFAULT_CAPABILITIES))).unwrap();
    let i386 = |nr: i32, args: [u64; 6]| {
        let d = SeccompData {
            nr,
            arch: I386_AUDIT_ARCH,
            args,
            ..Default::default()
        };
        run(p.instructions(), &d)
    };
    assert_eq!(i386(20, [0; 6]), ALLOW, "getpid");
    assert_eq!(
        i386(140, [0; 6]),
        ALLOW,
        "_llseek: i386-only, in the allow list"
    );
    assert_eq!(i386(357, [0; 6]), ERRNO | 1, "bpf without CAP_SYS_ADMIN");
    assert_eq!(
        i386(443, [0; 6]),
        ERRNO | 38,
        "quotactl_fd is not in the profile"
    );
    assert_eq!(
        i386(359, [16, 3, 9, 0, 0, 0]),
        ERRNO | 22,
        "socket(AF_NETLINK, …, NETLINK_AUDIT)"
    );
    assert!(
        !p.unknown_names().iter().any(|n| n == "_llseek"),
        "{:?}",
        p.unknown_names()
    );
    // Without SCMP_ARCH_X86 in the profile, i386 calls are a foreign ABI.
    let mut native_only = default_profile(&caps(PODMAN_DEFAULT_CAPABILITIES));
    native_only.set_architectures(Some(vec![oci_spec::runtime::Arch::ScmpArchX86_64]));
    let q = compile(&native_only).unwrap();
    let d = SeccompData {
        nr: 20,
        arch: I386_AUDIT_ARCH,
        ..Default::default()
    };
    assert_eq!(run(q.instructions(), &d), KILL_PROCESS);
    check_against_reference(&native_only, q.instructions()).unwrap();
}

#[test]
fn sixty_four_bit_argument_conditions_compare_both_words() {
    let big = 0x1_0000_0005u64;
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": big, "op": "SCMP_CMP_EQ"}]},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": big, "op": "SCMP_CMP_GT"}]},
            {"names": ["close"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": big, "op": "SCMP_CMP_LE"}]},
            {"names": ["dup"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": big, "op": "SCMP_CMP_NE"}]},
            {"names": ["dup2"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": big, "op": "SCMP_CMP_LT"}]},
            {"names": ["dup3"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 5, "value": big, "op": "SCMP_CMP_GE"}]},
        ]
    }));
    let p = compile(&s).unwrap();
    let r = |name: &str, i: usize, v: u64| {
        let mut a = [0; 6];
        a[i] = v;
        run(p.instructions(), &call(name, a)) == ALLOW
    };
    assert!(r("read", 1, big));
    assert!(!r("read", 1, 5), "same low word, different high word");
    assert!(r("write", 2, big + 1) && r("write", 2, 0x2_0000_0000));
    assert!(!r("write", 2, big) && !r("write", 2, 0xffff_ffff));
    assert!(r("close", 0, big) && r("close", 0, 0xffff_ffff) && !r("close", 0, big + 1));
    assert!(r("dup", 0, 5) && !r("dup", 0, big));
    assert!(r("dup2", 0, 0xffff_ffff) && !r("dup2", 0, big) && !r("dup2", 0, u64::MAX));
    assert!(r("dup3", 5, big) && r("dup3", 5, u64::MAX) && !r("dup3", 5, 0xffff_ffff));
    check_against_reference(&s, p.instructions()).unwrap();
}

#[test]
fn masked_eq_compares_the_masked_argument_with_value_two() {
    // clone: allow only without CLONE_NEWUSER (0x10000000) in the flags.
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0x1000_0000u64 | (1u64 << 40), "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    }));
    let p = compile(&s).unwrap();
    let r = |flags: u64| run(p.instructions(), &call("clone", [flags, 0, 0, 0, 0, 0]));
    assert_eq!(r(0x11), ALLOW);
    assert_eq!(r(0x1000_0011), ERRNO | 1);
    assert_eq!(r(1 << 40), ERRNO | 1, "the mask's high word counts");
    assert_eq!(r(1 << 41), ALLOW);
    check_against_reference(&s, p.instructions()).unwrap();
}

#[test]
fn rules_for_one_syscall_are_tried_in_order_and_and_their_conditions() {
    // The shape of the default profile's socket rules without CAP_AUDIT_WRITE.
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [
                {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]},
        ]
    }));
    let p = compile(&s).unwrap();
    let r = |a0, a2| run(p.instructions(), &call("socket", [a0, 1, a2, 0, 0, 0]));
    assert_eq!(r(16, 9), ERRNO | 22, "AF_NETLINK + NETLINK_AUDIT");
    assert_eq!(r(16, 0), ALLOW);
    assert_eq!(r(2, 9), ALLOW);
    check_against_reference(&s, p.instructions()).unwrap();
}

#[test]
fn programs_longer_than_256_instructions_jump_correctly_everywhere() {
    let names: Vec<&str> = [
        "read", "write", "openat", "close", "mmap", "futex", "getpid", "ioctl",
    ]
    .into_iter()
    .collect();
    let mut rules = vec![json!({"names": ["getppid"], "action": "SCMP_ACT_ALLOW"})];
    // 40 argument rules of ~8 instructions each, then a big allow list: well past 256.
    for i in 0..40u64 {
        rules.push(json!({"names": [names[i as usize % names.len()]], "action": "SCMP_ACT_ERRNO",
            "errnoRet": 100 + i, "args": [{"index": (i % 6), "value": (i << 33) | i, "op": "SCMP_CMP_EQ"}]}));
    }
    let all: Vec<String> = (0..400u32)
        .filter_map(syscall_name)
        .map(str::to_string)
        .collect();
    rules.push(json!({"names": all, "action": "SCMP_ACT_LOG"}));
    let s = spec(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": rules}));
    let p = compile(&s).unwrap();
    assert!(
        p.instructions().len() > 700,
        "{} instructions",
        p.instructions().len()
    );
    let n = check_against_reference(&s, p.instructions()).unwrap();
    assert!(n > 1000, "{n} probes");
}

#[test]
fn the_reference_check_catches_a_miscompiled_program() {
    // Negative control: a program with one comparison turned from > into ≥ must be caught.
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 2, "value": 4096, "op": "SCMP_CMP_GT"}]}]
    }));
    let mut prog = compile(&s).unwrap().instructions().to_vec();
    check_against_reference(&s, &prog).unwrap();
    let i = prog.iter().rposition(|i| i.code == JMP_JGT_K).unwrap();
    prog[i].code = JMP_JGE_K;
    let err = check_against_reference(&s, &prog).unwrap_err();
    assert!(err.contains("args"), "{err}");
}

#[test]
fn unknown_names_are_skipped_and_reported_and_unsupported_features_are_errors() {
    let s = spec(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid", "s390_runtime_instr", "getpdi"], "action": "SCMP_ACT_ALLOW"}]}));
    let p = compile(&s).unwrap();
    assert_eq!(p.unknown_names(), ["s390_runtime_instr", "getpdi"]);
    assert_eq!(run(p.instructions(), &call("getpid", [0; 6])), ALLOW);

    let notify_rule = spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(
        compile(&notify_rule)
            .unwrap_err()
            .to_string()
            .contains("syscalls[0]")
    );
    let p = compile(&default_profile(&caps(PODMAN_DEFAULT_CAPABILITIES))).unwrap();
    if cfg!(target_arch = "x86_64") {
        assert!(
            !p.notes().iter().any(|n| n.contains("SCMP_ARCH_X86 ")),
            "i386 is compiled: {:?}",
            p.notes()
        );
        assert!(
            p.notes().iter().any(|n| n.contains("SCMP_ARCH_X32")),
            "{:?}",
            p.notes()
        );
    }
    let notify = spec(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert!(
        compile(&notify)
            .unwrap_err()
            .to_string()
            .contains("SCMP_ACT_NOTIFY")
    );
    let bad_index = spec(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}),
    );
    let e = compile(&bad_index).unwrap_err().to_string();
    assert!(e.contains("syscalls[0]") && e.contains("index 6"), "{e}");
    let errno_on_allow = spec(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}),
    );
    assert!(
        compile(&errno_on_allow)
            .unwrap_err()
            .to_string()
            .contains("errnoRet")
    );
    let big_errno = spec(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}));
    assert!(
        compile(&big_errno)
            .unwrap_err()
            .to_string()
            .contains("70000")
    );
    let flags = spec(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}),
    );
    assert_eq!(compile(&flags).unwrap().flags(), 2 | 4);
}

// === the default profile ===

#[test]
fn default_profile_with_default_caps_blocks_what_podman_blocks() {
    let s = default_profile(&caps(PODMAN_DEFAULT_CAPABILITIES));
    assert_eq!(s.default_errno_ret(), Some(38));
    let p = compile(&s).unwrap();
    let r = |name: &str, args: [u64; 6]| run(p.instructions(), &call(name, args));
    assert_eq!(r("read", [0; 6]), ALLOW);
    assert_eq!(
        r("mount", [0; 6]),
        ALLOW,
        "allowed by the profile; the missing CAP_SYS_ADMIN refuses it"
    );
    assert_eq!(r("bpf", [0; 6]), ERRNO | 1);
    assert_eq!(
        r("setns", [0; 6]),
        ALLOW,
        "the allow list names setns before the CAP_SYS_ADMIN rule"
    );
    assert_eq!(
        r("chroot", [0; 6]),
        ALLOW,
        "CAP_SYS_CHROOT is in the default set"
    );
    assert_eq!(r("kexec_load", [0; 6]), ERRNO | 1);
    assert_eq!(r("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("personality", [5, 0, 0, 0, 0, 0]), ERRNO | 38);
    assert_eq!(r("socket", [16, 3, 9, 0, 0, 0]), ERRNO | 22);
    assert_eq!(r("socket", [2, 1, 0, 0, 0, 0]), ALLOW);
    if cfg!(target_arch = "x86_64") {
        assert_eq!(r("arch_prctl", [0; 6]), ALLOW, "an amd64-only rule");
        assert_eq!(r("_sysctl", [0; 6]), ERRNO | 38, "not in the profile");
    }
    check_against_reference(&s, p.instructions()).unwrap();
    assert!(p.instructions().len() > 256);
}

#[test]
fn dispatch_is_a_binary_search_not_a_scan() {
    // Structural, not a timing: with ~370 listed syscalls a linear scan would run hundreds of
    // instructions for the last ones; the search tree needs about log2(370/4) + 4 compares.
    let p = compile(&default_profile(&caps(PODMAN_DEFAULT_CAPABILITIES))).unwrap();
    let worst = (0..512)
        .map(|nr| {
            let d = SeccompData {
                nr,
                arch: NATIVE_AUDIT_ARCH,
                ..Default::default()
            };
            run_counting(p.instructions(), &d).1
        })
        .max()
        .unwrap();
    eprintln!(
        "default profile: {} instructions, worst dispatch {worst}",
        p.instructions().len()
    );
    assert!(
        worst <= 24,
        "worst case {worst} instructions without argument checks"
    );
}

#[test]
fn capabilities_switch_the_conditional_rules() {
    let with_admin = default_profile(&caps(&["CAP_SYS_ADMIN", "CAP_AUDIT_WRITE"]));
    let p = compile(&with_admin).unwrap();
    assert_eq!(run(p.instructions(), &call("bpf", [0; 6])), ALLOW);
    assert_eq!(
        run(p.instructions(), &call("socket", [16, 3, 9, 0, 0, 0])),
        ALLOW
    );
    assert_eq!(
        run(p.instructions(), &call("chroot", [0; 6])),
        ERRNO | 1,
        "no CAP_SYS_CHROOT"
    );
    check_against_reference(&with_admin, p.instructions()).unwrap();
}
