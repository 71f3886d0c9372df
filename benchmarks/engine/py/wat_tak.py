"""wat_tak: Python equivalent of the export tak in wat/tak.wat (the values stay small, so no
i32 wrap-around can happen)."""


def tak(x, y, z):
    if y < x:
        return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y))
    return z


if __name__ == "__main__":
    import sys

    print([tak(*(int(arg) for arg in sys.argv[1:4]))])
