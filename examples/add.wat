;; add: the demo export-mode function of `kindling serve` (README): POST [2, 3], get [5].
(module
  (func (export "add") (param i64 i64) (result i64)
    (i64.add (local.get 0) (local.get 1))))
