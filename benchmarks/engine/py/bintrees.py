"""bintrees: line-by-line Python port of c/bintrees.c (same output).

A node is an object with three slots, as the C struct has three fields; freeing a tree is
dropping the last reference to it, so ``free_tree`` has no counterpart here."""

import sys

MASK = 0xFFFFFFFF


class Node:
    __slots__ = ("left", "right", "value")

    def __init__(self, left, right, value):
        self.left = left
        self.right = right
        self.value = value


def make_tree(depth, value):
    left = right = None
    if depth > 0:
        left = make_tree(depth - 1, (2 * value) & MASK)
        right = make_tree(depth - 1, (2 * value + 1) & MASK)
    return Node(left, right, value)


def check_tree(n):
    """A checksum that depends on the shape: value + 3 * left - right, in u32 arithmetic."""
    if n.left is None:
        return n.value
    return (n.value + 3 * check_tree(n.left) - check_tree(n.right)) & MASK


def main(argv):
    max_depth = int(argv[0]) if argv else 10
    if max_depth < 6:
        max_depth = 6
    long_lived = make_tree(max_depth, 1)
    for depth in range(4, max_depth + 1, 2):
        iterations = 1 << (max_depth - depth + 2)
        check = 0
        for i in range(iterations):
            t = make_tree(depth, i)
            check = (check * 3 + check_tree(t)) & MASK
            del t
        print(f"{iterations} trees of depth {depth} check {check}")
    print(f"long lived tree of depth {max_depth} check {check_tree(long_lived)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
