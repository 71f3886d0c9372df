;; wat_orbit: a damped oscillator with a square-root drag term, integrated for N steps in
;; float64 (semi-implicit Euler), accumulating x^2.  Only locals, no memory, no calls.
;; Stresses f64 add/mul/div/sqrt, a compare and a branch per step.
;; (func (export "orbit") (param $n i32) (result f64))
(module
  (func (export "orbit") (param $n i32) (result f64)
    (local $i i32)
    (local $x f64)
    (local $v f64)
    (local $a f64)
    (local $acc f64)
    (local.set $x (f64.const 1.0))
    (local.set $v (f64.const 0.0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; a = -4 * x - 0.01 * v * sqrt(|v| + 1)
        (local.set $a
          (f64.sub
            (f64.mul (f64.const -4.0) (local.get $x))
            (f64.mul
              (f64.mul (f64.const 0.01) (local.get $v))
              (f64.sqrt (f64.add (f64.abs (local.get $v)) (f64.const 1.0))))))
        (local.set $v (f64.add (local.get $v) (f64.mul (local.get $a) (f64.const 0.001))))
        (local.set $x (f64.add (local.get $x) (f64.mul (local.get $v) (f64.const 0.001))))
        ;; a kick whenever the oscillator has nearly died down
        (if (f64.lt (f64.abs (local.get $x)) (f64.const 0.0001))
          (then (local.set $v (f64.add (local.get $v) (f64.const 1.0)))))
        (local.set $acc
          (f64.add (local.get $acc) (f64.div (f64.mul (local.get $x) (local.get $x)) (f64.const 3.0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $acc)))
