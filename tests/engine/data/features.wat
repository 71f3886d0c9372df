;; A valid module touching every part of the binary format the decoder reads and every
;; Wasm 2.0 feature the validator types (SIMD excepted). Built with:
;;   wat2wasm features.wat -o features.wasm
(module
  (type $binop (func (param i32 i32) (result i32)))
  (type $pair (func (param i32) (result i32 i64)))
  (import "env" "log" (func $log (param i32)))
  (import "env" "table" (table $imported 1 10 funcref))
  (import "env" "memory" (memory 1 2))
  (import "env" "base" (global $base i32))
  (import "env" "counter" (global $counter (mut i64)))

  (table $refs 2 externref)
  (table $more 4 funcref)
  (global $scale (mut f32) (f32.const 1.5))
  (global $fn funcref (ref.func $add))
  (global $offset i32 (global.get $base))

  (export "add" (func $add))
  (export "memory" (memory 0))
  (export "scale" (global $scale))
  (export "refs" (table $refs))
  (start $init)

  ;; Element segments of all eight encodings (see the decoder's element_segment).
  (elem (i32.const 0) $add)                                  ;; 0: active, table 0, indices
  (elem $passive func $add $sub)                             ;; 1: passive, indices
  (elem (table $more) (i32.const 1) func $sub)               ;; 2: active, explicit table
  (elem declare func $pair)                                  ;; 3: declarative, indices
  (elem (i32.const 2) funcref (ref.func $add) (ref.null func)) ;; 4: active, expressions
  (elem $exprs funcref (ref.func $sub) (ref.null func))      ;; 5: passive, expressions
  (elem (table $refs) (i32.const 0) externref (ref.null extern)) ;; 6: active, explicit table
  (elem declare funcref (ref.null func) (ref.func $init))    ;; 7: declarative, expressions

  (data (i32.const 16) "hello")                              ;; active
  (data $bytes "\00\01\02\ff")                               ;; passive

  (func $init
    (call $log (i32.const -1)))

  (func $add (type $binop)
    (i32.add (local.get 0) (local.get 1)))

  (func $sub (type $binop)
    (i32.sub (local.get 0) (local.get 1)))

  ;; Multi-value results and a block with parameters.
  (func $pair (type $pair)
    (local.get 0)
    (block (param i32) (result i32 i64)
      (i64.extend_i32_u (local.get 0)))
  )

  (func $control (param $n i32) (result i32) (local $acc i32) (local $x i64) (local $y f64)
    (block $exit
      (loop $again
        (br_if $exit (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (block $a (block $b (block $c
      (br_table $a $b $c (local.get $acc)))))
    (if (result i32) (local.get $acc)
      (then (i32.const 7))
      (else (i32.const 8)))
    (drop)
    (local.set $x (i64.const -9223372036854775808))
    (local.set $y (f64.const -0x1.8p+3))
    (drop (f32.const nan:0x200001))
    (select (result i64) (local.get $x) (i64.const 0) (i32.const 1))
    (drop)
    (select (local.get $y) (f64.const 0) (local.get $acc))
    (drop)
    (call_indirect (type $binop) (i32.const 1) (i32.const 2) (i32.const 0))
    (return)
  )

  (func $memory (param $p i32)
    (i32.store offset=8 align=2 (local.get $p) (i32.load8_u offset=3 (local.get $p)))
    (i64.store32 (local.get $p) (i64.load (local.get $p)))
    (drop (memory.grow (memory.size)))
    (memory.fill (local.get $p) (i32.const 0) (i32.const 4))
    (memory.copy (local.get $p) (i32.const 0) (i32.const 4))
    (memory.init $bytes (local.get $p) (i32.const 0) (i32.const 4))
    (data.drop $bytes)
    (drop (i32.trunc_sat_f64_s (f64.const 1e30)))
    (drop (i64.extend32_s (i64.const 5)))
  )

  (func $tables (param $r externref) (result i32)
    (table.set $refs (i32.const 0) (local.get $r))
    (drop (table.get $refs (i32.const 0)))
    (drop (table.grow $refs (ref.null extern) (i32.const 1)))
    (table.fill $refs (i32.const 0) (local.get $r) (i32.const 1))
    (table.init $imported $passive (i32.const 0) (i32.const 0) (i32.const 1))
    (table.copy $imported 0 (i32.const 0) (i32.const 1) (i32.const 1))
    (elem.drop $exprs)
    (drop (ref.is_null (ref.func $pair)))
    (drop (global.get $fn))
    (global.set $scale (f32.const 2))
    (global.set $counter (i64.const 1))
    (table.size $refs)
  )

  ;; Unreachable code: operands of unknown type satisfy anything.
  (func $dead (result i32)
    (unreachable)
    (i64.add)
    (drop)
    (select)
    (i32.eqz)
  )
)
