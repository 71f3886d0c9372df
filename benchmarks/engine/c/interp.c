/* interp: a switch-dispatched stack-machine interpreter running a small bytecode loop
 * N times (a hash of the loop counter).  Stresses br_table dispatch, branches and
 * i32 loads/stores of the operand stack.
 * usage: interp N          (prints the final registers and the instruction count) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum {
    OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_XOR, OP_AND, OP_OR,
    OP_SHL, OP_SHR, OP_DUP, OP_DROP, OP_SWAP, OP_LT, OP_JNZ, OP_JMP, OP_INC,
};

/* r0 = N, r1 = hash, r2 = i;  while (i < N) { h = h*31 ^ i; h ^= h >> 7;
 * if ((i & 3) == 0) h += h << 3; else r3 -= i;  i++ } */
static int32_t program[] = {
    /*  0 */ OP_JMP, 42,
    /*  2 */ OP_LOAD, 1, OP_PUSH, 31, OP_MUL, OP_LOAD, 2, OP_XOR,
    /* 10 */ OP_DUP, OP_SHR, 7, OP_XOR, OP_STORE, 1,
    /* 16 */ OP_LOAD, 2, OP_PUSH, 3, OP_AND, OP_JNZ, 33,
    /* 23 */ OP_LOAD, 1, OP_DUP, OP_SHL, 3, OP_ADD, OP_STORE, 1, OP_JMP, 40,
    /* 33 */ OP_LOAD, 3, OP_LOAD, 2, OP_SUB, OP_STORE, 3,
    /* 40 */ OP_INC, 2,
    /* 42 */ OP_LOAD, 2, OP_LOAD, 0, OP_LT, OP_JNZ, 2,
    /* 49 */ OP_PUSH, 0, OP_DROP, OP_LOAD, 1, OP_LOAD, 3, OP_SWAP, OP_OR, OP_STORE, 4,
    /* 60 */ OP_HALT,
};

static uint32_t run(const int32_t *code, uint32_t *regs)
{
    uint32_t stack[64];
    int sp = 0;
    int pc = 0;
    uint32_t steps = 0;
    for (;;) {
        int32_t op = code[pc++];
        steps++;
        switch (op) {
        case OP_HALT:
            return steps;
        case OP_PUSH:
            stack[sp++] = (uint32_t)code[pc++];
            break;
        case OP_LOAD:
            stack[sp++] = regs[code[pc++]];
            break;
        case OP_STORE:
            regs[code[pc++]] = stack[--sp];
            break;
        case OP_ADD:
            sp--;
            stack[sp - 1] += stack[sp];
            break;
        case OP_SUB:
            sp--;
            stack[sp - 1] -= stack[sp];
            break;
        case OP_MUL:
            sp--;
            stack[sp - 1] *= stack[sp];
            break;
        case OP_XOR:
            sp--;
            stack[sp - 1] ^= stack[sp];
            break;
        case OP_AND:
            sp--;
            stack[sp - 1] &= stack[sp];
            break;
        case OP_OR:
            sp--;
            stack[sp - 1] |= stack[sp];
            break;
        case OP_SHL:
            stack[sp - 1] <<= code[pc++];
            break;
        case OP_SHR:
            stack[sp - 1] >>= code[pc++];
            break;
        case OP_DUP:
            stack[sp] = stack[sp - 1];
            sp++;
            break;
        case OP_DROP:
            sp--;
            break;
        case OP_SWAP: {
            uint32_t t = stack[sp - 1];
            stack[sp - 1] = stack[sp - 2];
            stack[sp - 2] = t;
            break;
        }
        case OP_LT:
            sp--;
            stack[sp - 1] = stack[sp - 1] < stack[sp];
            break;
        case OP_JNZ:
            if (stack[--sp] != 0)
                pc = code[pc];
            else
                pc++;
            break;
        case OP_JMP:
            pc = code[pc];
            break;
        case OP_INC:
            regs[code[pc++]]++;
            break;
        default:
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    uint32_t regs[5] = {0, 0, 0, 0, 0};
    regs[0] = (uint32_t)(argc > 1 ? atol(argv[1]) : 1000);
    uint32_t steps = run(program, regs);
    printf("interp(%u) steps %u hash %08x r3 %08x r4 %08x\n", regs[0], steps, regs[1], regs[3],
           regs[4]);
    return 0;
}
