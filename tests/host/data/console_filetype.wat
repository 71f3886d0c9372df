;; Exits with the preview1 filetype fd_fdstat_get gives for fd N (argv[1] is "0", "1" or
;; "2"): 2 (character device) is what makes wasi-libc's isatty() true.
(module
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (drop (call $fd_fdstat_get
      (i32.sub (i32.load8_u (i32.load (i32.const 1028))) (i32.const 48)) (i32.const 0)))
    (call $proc_exit (i32.load8_u (i32.const 0)))))
