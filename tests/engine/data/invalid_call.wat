;; An invalid module (built with `wat2wasm --no-check invalid_call.wat -o invalid_call.wasm`):
;; function 2 (after one import and one valid function) passes an i64 where $take wants
;; an i32. The validator must name function 2 and the offset of the `call`.
(module
  (import "env" "take" (func $take (param i32)))
  (func $fine (param i32) (call $take (local.get 0)))
  (func $broken (param i64) (call $take (local.get 0)))
)
