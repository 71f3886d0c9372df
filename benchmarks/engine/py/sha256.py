"""sha256: line-by-line Python port of c/sha256.c (same output; equals hashlib's digest)."""

import sys

BUF_SIZE = 4096
MASK = 0xFFFFFFFF

# fmt: off
K = [
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
]
# fmt: on


def rotr(x, n):
    return ((x >> n) | (x << (32 - n))) & MASK


def compress(state, block, at):
    w = [0] * 64
    for t in range(16):
        w[t] = (
            block[at + 4 * t] << 24
            | block[at + 4 * t + 1] << 16
            | block[at + 4 * t + 2] << 8
            | block[at + 4 * t + 3]
        )
    for t in range(16, 64):
        s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
        s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & MASK
    a, b, c, d = state[0], state[1], state[2], state[3]
    e, f, g, h = state[4], state[5], state[6], state[7]
    for t in range(64):
        s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
        ch = (e & f) ^ (~e & g)
        t1 = (h + s1 + ch + K[t] + w[t]) & MASK
        s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
        maj = (a & b) ^ (a & c) ^ (b & c)
        t2 = (s0 + maj) & MASK
        h = g
        g = f
        f = e
        e = (d + t1) & MASK
        d = c
        c = b
        b = a
        a = (t1 + t2) & MASK
    state[0] = (state[0] + a) & MASK
    state[1] = (state[1] + b) & MASK
    state[2] = (state[2] + c) & MASK
    state[3] = (state[3] + d) & MASK
    state[4] = (state[4] + e) & MASK
    state[5] = (state[5] + f) & MASK
    state[6] = (state[6] + g) & MASK
    state[7] = (state[7] + h) & MASK


def main(argv):
    total = int(argv[0]) if argv else 65536
    buf = bytearray(BUF_SIZE)
    x = 0x6A09E667
    for i in range(BUF_SIZE):
        x ^= (x << 13) & MASK
        x ^= x >> 17
        x ^= (x << 5) & MASK
        buf[i] = x >> 24
    state = [
        0x6A09E667,
        0xBB67AE85,
        0x3C6EF372,
        0xA54FF53A,
        0x510E527F,
        0x9B05688C,
        0x1F83D9AB,
        0x5BE0CD19,
    ]
    # BUF_SIZE is a multiple of 64, so a whole block never wraps around the buffer
    done = 0
    while total - done >= 64:
        compress(state, buf, done % BUF_SIZE)
        done += 64
    last = bytearray(128)
    tail = total - done
    last[0:tail] = buf[done % BUF_SIZE : done % BUF_SIZE + tail]
    last[tail] = 0x80
    padded = 64 if tail + 9 <= 64 else 128
    last[tail + 1 : padded] = bytes(padded - tail - 1)
    bits = (total * 8) & 0xFFFFFFFFFFFFFFFF
    for i in range(8):
        last[padded - 1 - i] = (bits >> (8 * i)) & 0xFF
    compress(state, last, 0)
    if padded == 128:
        compress(state, last, 64)
    print(f"sha256({total} bytes) = " + "".join(f"{s:08x}" for s in state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
