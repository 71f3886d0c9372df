"""Micro-benchmark behind the run-time form of a ``v128`` (docs/design.md, "SIMD values").

Times the operations compiled SIMD code does most -- a load and a store, lane-wise integer
addition, a bitwise ``and``, a lane extraction, lane-wise float multiplication and a byte
shuffle -- with a ``v128`` held three ways:

- ``int``: one unsigned 128-bit Python int, lane 0 in the low bits;
- ``bytes``: the 16 bytes as memory holds them;
- ``tuple``: four 32-bit lanes (the lane shape of the data then differs per instruction).

Run: ``python benchmarks/simd_representation.py``; prints ns per operation.
"""

from __future__ import annotations

import struct
import timeit

QQ = struct.Struct("<QQ")
U32X4 = struct.Struct("<4I")
F32X4 = struct.Struct("<4f")
M64 = (1 << 64) - 1
HIGH32 = 0x80000000_80000000_80000000_80000000
LOW32 = HIGH32 ^ ((1 << 128) - 1)
SHUFFLE = (3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12)


def int_load(m: bytearray, a: int) -> int:
    lo, hi = QQ.unpack_from(m, a)
    return lo | hi << 64


def int_store(m: bytearray, a: int, v: int) -> None:
    QQ.pack_into(m, a, v & M64, v >> 64)


def int_add(a: int, b: int) -> int:
    return ((a & LOW32) + (b & LOW32)) ^ ((a ^ b) & HIGH32)


def int_fmul(a: int, b: int) -> int:
    x = F32X4.unpack(a.to_bytes(16, "little"))
    y = F32X4.unpack(b.to_bytes(16, "little"))
    return int.from_bytes(F32X4.pack(*[p * q for p, q in zip(x, y, strict=True)]), "little")


def int_shuffle(a: int, b: int) -> int:
    data = a.to_bytes(16, "little") + b.to_bytes(16, "little")
    return int.from_bytes(bytes([data[i] for i in SHUFFLE]), "little")


def bytes_load(m: bytearray, a: int) -> bytes:
    v = bytes(m[a : a + 16])
    if len(v) != 16:
        raise IndexError
    return v


def bytes_store(m: bytearray, a: int, v: bytes) -> None:
    if a + 16 > len(m):
        raise IndexError
    m[a : a + 16] = v


def bytes_add(a: bytes, b: bytes) -> bytes:
    x, y = U32X4.unpack(a), U32X4.unpack(b)
    return U32X4.pack(*[(p + q) & 0xFFFFFFFF for p, q in zip(x, y, strict=True)])


def bytes_and(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") & int.from_bytes(b, "little")).to_bytes(16, "little")


def bytes_fmul(a: bytes, b: bytes) -> bytes:
    return F32X4.pack(*[p * q for p, q in zip(F32X4.unpack(a), F32X4.unpack(b), strict=True)])


def bytes_shuffle(a: bytes, b: bytes) -> bytes:
    data = a + b
    return bytes([data[i] for i in SHUFFLE])


def tuple_load(m: bytearray, a: int) -> tuple[int, ...]:
    return U32X4.unpack_from(m, a)


def tuple_store(m: bytearray, a: int, v: tuple[int, ...]) -> None:
    U32X4.pack_into(m, a, *v)


def tuple_add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple([(p + q) & 0xFFFFFFFF for p, q in zip(a, b, strict=True)])


def tuple_and(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple([p & q for p, q in zip(a, b, strict=True)])


def tuple_fmul(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    x, y = F32X4.unpack(U32X4.pack(*a)), F32X4.unpack(U32X4.pack(*b))
    return U32X4.unpack(F32X4.pack(*[p * q for p, q in zip(x, y, strict=True)]))


def tuple_shuffle(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    data = U32X4.pack(*a) + U32X4.pack(*b)
    return U32X4.unpack(bytes([data[i] for i in SHUFFLE]))


def main() -> None:
    memory = bytearray(range(256)) * 4
    setup = "m = memory"
    cases = {
        "int": {
            "load": "int_load(m, 16)",
            "store": "int_store(m, 32, v)",
            "i32x4.add": "int_add(v, w)",
            "v128.and": "v & w",
            "extract_lane_u 5": "(v >> 40) & 0xFF",
            "f32x4.mul": "int_fmul(v, w)",
            "shuffle": "int_shuffle(v, w)",
        },
        "bytes": {
            "load": "bytes_load(m, 16)",
            "store": "bytes_store(m, 32, v)",
            "i32x4.add": "bytes_add(v, w)",
            "v128.and": "bytes_and(v, w)",
            "extract_lane_u 5": "v[5]",
            "f32x4.mul": "bytes_fmul(v, w)",
            "shuffle": "bytes_shuffle(v, w)",
        },
        "tuple": {
            "load": "tuple_load(m, 16)",
            "store": "tuple_store(m, 32, v)",
            "i32x4.add": "tuple_add(v, w)",
            "v128.and": "tuple_and(v, w)",
            "extract_lane_u 5": "(v[1] >> 8) & 0xFF",
            "f32x4.mul": "tuple_fmul(v, w)",
            "shuffle": "tuple_shuffle(v, w)",
        },
    }
    makers = {"int": "int_load", "bytes": "bytes_load", "tuple": "tuple_load"}
    names = list(cases["int"])
    print(f"{'ns per op':>18}" + "".join(f"{n:>10}" for n in cases))
    for name in names:
        row = []
        for form, statements in cases.items():
            globals_ = {**globals(), "memory": memory}
            prepare = f"{setup}; v = {makers[form]}(m, 0); w = {makers[form]}(m, 64)"
            timer = timeit.Timer(statements[name], prepare, globals=globals_)
            number, _ = timer.autorange()
            best = min(timer.repeat(5, number)) / number
            row.append(best * 1e9)
        print(f"{name:>18}" + "".join(f"{ns:>10.0f}" for ns in row))


if __name__ == "__main__":
    main()
