//! Classic BPF for seccomp: the instruction format, an assembler that keeps every conditional
//! jump within BPF's 8-bit offsets, and (for tests) an interpreter.
//!
//! The assembler emits **backwards**, from the program's last instruction to its first, the way
//! libseccomp's generator does: every jump target is already placed when the jump is emitted,
//! so its distance is known. A conditional jump further than 255 instructions gets a `ja`
//! trampoline (32-bit offset) placed right after it.

/// One `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// `BPF_LD | BPF_W | BPF_ABS`: load a 32-bit word of `seccomp_data`.
pub(crate) const LD_W_ABS: u16 = 0x20;
/// `BPF_ALU | BPF_AND | BPF_K`.
pub(crate) const ALU_AND_K: u16 = 0x54;
/// `BPF_JMP | BPF_JA`.
pub(crate) const JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub(crate) const JMP_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`.
pub(crate) const JMP_JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K`.
pub(crate) const JMP_JGE_K: u16 = 0x35;
/// `BPF_RET | BPF_K`.
pub(crate) const RET_K: u16 = 0x06;

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub(crate) const MAX_INSNS: usize = 4096;

/// A placed instruction, named by its index counted from the program's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// The backwards assembler.
#[derive(Default)]
pub(crate) struct Asm {
    rev: Vec<Insn>,
}

impl Asm {
    /// The offset a jump emitted next would need to reach `l`.
    fn dist(&self, l: Label) -> usize {
        self.rev.len() - l.0 - 1
    }

    fn emit(&mut self, i: Insn) -> Label {
        self.rev.push(i);
        Label(self.rev.len() - 1)
    }

    /// `ret k`.
    pub(crate) fn ret(&mut self, k: u32) -> Label {
        self.emit(Insn {
            code: RET_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `ld [offset]`.
    pub(crate) fn load(&mut self, offset: u32) -> Label {
        self.emit(Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: offset,
        })
    }

    /// `and #k`.
    pub(crate) fn and(&mut self, k: u32) -> Label {
        self.emit(Insn {
            code: ALU_AND_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `ja target`.
    pub(crate) fn ja(&mut self, target: Label) -> Label {
        let k = u32::try_from(self.dist(target)).expect("programs are far below 2^32 instructions");
        self.emit(Insn {
            code: JMP_JA,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// A conditional jump (`code` is one of the `JMP_*_K`): to `t` when `A op k`, else to `f`.
    pub(crate) fn jump(&mut self, code: u16, k: u32, mut t: Label, mut f: Label) -> Label {
        loop {
            if self.dist(t) > 255 {
                t = self.ja(t);
            } else if self.dist(f) > 255 {
                f = self.ja(f);
            } else {
                break;
            }
        }
        let (jt, jf) = (self.dist(t) as u8, self.dist(f) as u8);
        self.emit(Insn { code, jt, jf, k })
    }

    /// The program in execution order.
    pub(crate) fn finish(mut self) -> Vec<Insn> {
        self.rev.reverse();
        self.rev
    }
}

/// `struct seccomp_data` as the filter sees it.
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SeccompData {
    pub(crate) nr: i32,
    pub(crate) arch: u32,
    pub(crate) instruction_pointer: u64,
    pub(crate) args: [u64; 6],
}

#[cfg(test)]
impl SeccompData {
    fn word(&self, offset: u32) -> u32 {
        let mut bytes = [0u8; 64];
        bytes[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let o = offset as usize;
        assert!(
            o.is_multiple_of(4) && o + 4 <= 64,
            "load at offset {offset} outside seccomp_data"
        );
        u32::from_ne_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
    }
}

/// Runs `prog` on `data` the way the kernel does and returns the `ret` value. Panics on what
/// the kernel's checker would refuse (jumps past the end, unknown opcodes, falling off the end).
#[cfg(test)]
pub(crate) fn run(prog: &[Insn], data: &SeccompData) -> u32 {
    run_counting(prog, data).0
}

/// [`run`], also returning how many instructions executed.
#[cfg(test)]
pub(crate) fn run_counting(prog: &[Insn], data: &SeccompData) -> (u32, usize) {
    let mut steps = 0;
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        steps += 1;
        let i = prog
            .get(pc)
            .unwrap_or_else(|| panic!("fell off the program at {pc}"));
        pc += 1;
        let cond = |holds: bool| {
            if holds {
                usize::from(i.jt)
            } else {
                usize::from(i.jf)
            }
        };
        match i.code {
            LD_W_ABS => a = data.word(i.k),
            ALU_AND_K => a &= i.k,
            JMP_JA => pc += i.k as usize,
            JMP_JEQ_K => pc += cond(a == i.k),
            JMP_JGT_K => pc += cond(a > i.k),
            JMP_JGE_K => pc += cond(a >= i.k),
            RET_K => return (i.k, steps),
            other => panic!(
                "opcode {other:#x} at {} is not one the compiler emits",
                pc - 1
            ),
        }
        assert!(pc < prog.len(), "jump past the end from {}", pc - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_conditional_targets_get_trampolines() {
        let mut asm = Asm::default();
        let far_true = asm.ret(1);
        for _ in 0..300 {
            asm.ret(99);
        }
        let near_false = asm.ret(2);
        asm.jump(JMP_JEQ_K, 7, far_true, near_false);
        asm.load(0);
        let prog = asm.finish();
        assert!(
            prog.iter().any(|i| i.code == JMP_JA),
            "a trampoline was placed"
        );
        let hit = SeccompData {
            nr: 7,
            ..Default::default()
        };
        let miss = SeccompData {
            nr: 8,
            ..Default::default()
        };
        assert_eq!(run(&prog, &hit), 1);
        assert_eq!(run(&prog, &miss), 2);
    }

    #[test]
    fn both_targets_far_still_work() {
        let mut asm = Asm::default();
        let t = asm.ret(1);
        for _ in 0..300 {
            asm.ret(99);
        }
        let f = asm.ret(2);
        for _ in 0..300 {
            asm.ret(98);
        }
        asm.jump(JMP_JGT_K, 10, t, f);
        asm.load(0);
        let prog = asm.finish();
        assert_eq!(
            run(
                &prog,
                &SeccompData {
                    nr: 11,
                    ..Default::default()
                }
            ),
            1
        );
        assert_eq!(
            run(
                &prog,
                &SeccompData {
                    nr: 10,
                    ..Default::default()
                }
            ),
            2
        );
    }
}
