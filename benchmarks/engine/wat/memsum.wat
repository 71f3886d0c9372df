;; wat_memsum: fill 4096 i32 words of linear memory from an LCG, then walk them PASSES times,
;; mixing every word into an accumulator and writing an updated word back.
;; Stresses i32.load / i32.store with computed addresses and i32.rotl.
;; (func (export "memsum") (param $passes i32) (result i32))
(module
  (memory 1)
  (func (export "memsum") (param $passes i32) (result i32)
    (local $i i32)
    (local $x i32)
    (local $acc i32)
    (local $pass i32)
    (local $word i32)
    ;; fill: x = x * 1664525 + 1013904223; mem[i] = x
    (local.set $x (i32.const 12345))
    (block $filled
      (loop $fill
        (br_if $filled (i32.ge_u (local.get $i) (i32.const 4096)))
        (local.set $x
          (i32.add (i32.mul (local.get $x) (i32.const 1664525)) (i32.const 1013904223)))
        (i32.store (i32.shl (local.get $i) (i32.const 2)) (local.get $x))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (block $done
      (loop $passes_loop
        (br_if $done (i32.ge_u (local.get $pass) (local.get $passes)))
        (local.set $i (i32.const 0))
        (block $walked
          (loop $walk
            (br_if $walked (i32.ge_u (local.get $i) (i32.const 4096)))
            ;; acc = rotl(acc ^ word, 5) + i;  mem[i] = word + (acc >> 3)
            (local.set $word (i32.load (i32.shl (local.get $i) (i32.const 2))))
            (local.set $acc
              (i32.add
                (i32.rotl (i32.xor (local.get $acc) (local.get $word)) (i32.const 5))
                (local.get $i)))
            (i32.store (i32.shl (local.get $i) (i32.const 2))
              (i32.add (local.get $word) (i32.shr_u (local.get $acc) (i32.const 3))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $walk)))
        (local.set $pass (i32.add (local.get $pass) (i32.const 1)))
        (br $passes_loop)))
    (local.get $acc)))
