"""interp: line-by-line Python port of c/interp.c (same output).

The switch becomes an if/elif chain in the same case order, on the opcode numbers of the C
enum (named in comments); u32 wrap-around is emulated with a mask."""

import sys

MASK = 0xFFFFFFFF

# opcodes: HALT 0, PUSH 1, LOAD 2, STORE 3, ADD 4, SUB 5, MUL 6, XOR 7, AND 8, OR 9,
# SHL 10, SHR 11, DUP 12, DROP 13, SWAP 14, LT 15, JNZ 16, JMP 17, INC 18
# r0 = N, r1 = hash, r2 = i;  while (i < N) { h = h*31 ^ i; h ^= h >> 7;
# if ((i & 3) == 0) h += h << 3; else r3 -= i;  i++ }
# fmt: off
program = [
    17, 42,                               # 0: JMP 42
    2, 1, 1, 31, 6, 2, 2, 7,              # 2: LOAD 1, PUSH 31, MUL, LOAD 2, XOR
    12, 11, 7, 7, 3, 1,                   # 10: DUP, SHR 7, XOR, STORE 1
    2, 2, 1, 3, 8, 16, 33,                # 16: LOAD 2, PUSH 3, AND, JNZ 33
    2, 1, 12, 10, 3, 4, 3, 1, 17, 40,     # 23: LOAD 1, DUP, SHL 3, ADD, STORE 1, JMP 40
    2, 3, 2, 2, 5, 3, 3,                  # 33: LOAD 3, LOAD 2, SUB, STORE 3
    18, 2,                                # 40: INC 2
    2, 2, 2, 0, 15, 16, 2,                # 42: LOAD 2, LOAD 0, LT, JNZ 2
    1, 0, 13, 2, 1, 2, 3, 14, 9, 3, 4,    # 49: PUSH 0, DROP, LOAD 1, LOAD 3, SWAP, OR, STORE 4
    0,                                    # 60: HALT
]
# fmt: on


def run(code, regs):
    stack = [0] * 64
    sp = 0
    pc = 0
    steps = 0
    while True:
        op = code[pc]
        pc += 1
        steps += 1
        if op == 0:  # HALT
            return steps
        elif op == 1:  # PUSH
            stack[sp] = code[pc] & MASK
            sp += 1
            pc += 1
        elif op == 2:  # LOAD
            stack[sp] = regs[code[pc]]
            sp += 1
            pc += 1
        elif op == 3:  # STORE
            sp -= 1
            regs[code[pc]] = stack[sp]
            pc += 1
        elif op == 4:  # ADD
            sp -= 1
            stack[sp - 1] = (stack[sp - 1] + stack[sp]) & MASK
        elif op == 5:  # SUB
            sp -= 1
            stack[sp - 1] = (stack[sp - 1] - stack[sp]) & MASK
        elif op == 6:  # MUL
            sp -= 1
            stack[sp - 1] = (stack[sp - 1] * stack[sp]) & MASK
        elif op == 7:  # XOR
            sp -= 1
            stack[sp - 1] ^= stack[sp]
        elif op == 8:  # AND
            sp -= 1
            stack[sp - 1] &= stack[sp]
        elif op == 9:  # OR
            sp -= 1
            stack[sp - 1] |= stack[sp]
        elif op == 10:  # SHL
            stack[sp - 1] = (stack[sp - 1] << code[pc]) & MASK
            pc += 1
        elif op == 11:  # SHR
            stack[sp - 1] >>= code[pc]
            pc += 1
        elif op == 12:  # DUP
            stack[sp] = stack[sp - 1]
            sp += 1
        elif op == 13:  # DROP
            sp -= 1
        elif op == 14:  # SWAP
            t = stack[sp - 1]
            stack[sp - 1] = stack[sp - 2]
            stack[sp - 2] = t
        elif op == 15:  # LT
            sp -= 1
            stack[sp - 1] = int(stack[sp - 1] < stack[sp])
        elif op == 16:  # JNZ
            sp -= 1
            if stack[sp] != 0:
                pc = code[pc]
            else:
                pc += 1
        elif op == 17:  # JMP
            pc = code[pc]
        elif op == 18:  # INC
            regs[code[pc]] = (regs[code[pc]] + 1) & MASK
            pc += 1
        else:
            return 0


def main(argv):
    regs = [0, 0, 0, 0, 0]
    regs[0] = (int(argv[0]) if argv else 1000) & MASK
    steps = run(program, regs)
    print(f"interp({regs[0]}) steps {steps} hash {regs[1]:08x} r3 {regs[3]:08x} r4 {regs[4]:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
