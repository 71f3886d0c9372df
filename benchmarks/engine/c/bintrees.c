/* bintrees: allocate, walk and free many complete binary trees (the binary-trees game).
 * Stresses malloc/free, pointer loads and stores, and recursive calls.
 * usage: bintrees DEPTH    (prints a checksum per depth, like the classic benchmark) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct node {
    struct node *left;
    struct node *right;
    uint32_t value;
};

static struct node *make_tree(int depth, uint32_t value)
{
    struct node *left = NULL, *right = NULL;
    if (depth > 0) {
        left = make_tree(depth - 1, 2 * value);
        right = make_tree(depth - 1, 2 * value + 1);
    }
    struct node *n = malloc(sizeof *n);
    if (!n)
        exit(2);
    n->left = left;
    n->right = right;
    n->value = value;
    return n;
}

/* A checksum that depends on the shape: value + 3 * left - right, in u32 arithmetic. */
static uint32_t check_tree(const struct node *n)
{
    if (!n->left)
        return n->value;
    return n->value + 3u * check_tree(n->left) - check_tree(n->right);
}

static void free_tree(struct node *n)
{
    if (n->left) {
        free_tree(n->left);
        free_tree(n->right);
    }
    free(n);
}

int main(int argc, char **argv)
{
    int max_depth = argc > 1 ? atoi(argv[1]) : 10;
    if (max_depth < 6)
        max_depth = 6;
    struct node *long_lived = make_tree(max_depth, 1);
    for (int depth = 4; depth <= max_depth; depth += 2) {
        int iterations = 1 << (max_depth - depth + 2);
        uint32_t check = 0;
        for (int i = 0; i < iterations; i++) {
            struct node *t = make_tree(depth, (uint32_t)i);
            check = check * 3u + check_tree(t);
            free_tree(t);
        }
        printf("%d trees of depth %d check %u\n", iterations, depth, check);
    }
    printf("long lived tree of depth %d check %u\n", max_depth, check_tree(long_lived));
    free_tree(long_lived);
    return 0;
}
