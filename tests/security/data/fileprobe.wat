;; A WASI program that tries one file operation in its first preopen (fd 3) and exits with
;; the errno it got (0: it worked). `fileprobe OP PATH [PATH2]`; OP's first letter picks:
;;   o open PATH (following symlinks) and print what it reads   O the same without following
;;   w create/truncate PATH and write "x"     s path_filestat_get (following)
;;   m mkdir     d rmdir     u unlink         r rename PATH to PATH2
;;   l symlink PATH2 -> PATH (a link PATH whose text is PATH2)    h hard link PATH as PATH2
;;   t set PATH's times                       k readlink PATH and print it
;;   S open PATH and print it, read one byte of stdin, then open and print it again
;;   f open PATH, then fd_filestat_set_size and fd_filestat_set_times on it (read-only tests)
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory"
    (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory"
    (func $path_remove_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file"
    (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename"
    (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link"
    (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_readlink"
    (func $path_readlink (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times"
    (func $path_filestat_set_times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size"
    (func $fd_filestat_set_size (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_times"
    (func $fd_filestat_set_times (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 300) "x")

  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func $arg (param $i i32) (result i32)
    (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))

  ;; write the n bytes at 8192 to stdout
  (func $show (param $n i32)
    (i32.store (i32.const 0) (i32.const 8192))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; open (rights: read, filestat set size and times), leaving the fd at 100; its errno
  (func $open (param $lookup i32) (param $p i32) (param $n i32) (result i32)
    (call $path_open (i32.const 3) (local.get $lookup) (local.get $p) (local.get $n)
      (i32.const 0) (i64.const 0xc00002) (i64.const 0) (i32.const 0) (i32.const 100)))

  ;; open, read up to 4096 bytes and print them; the first errno
  (func $open_and_show (param $lookup i32) (param $p i32) (param $n i32) (result i32)
    (local $e i32)
    (local.set $e (call $open (local.get $lookup) (local.get $p) (local.get $n)))
    (if (local.get $e) (then (return (local.get $e))))
    (i32.store (i32.const 0) (i32.const 8192))
    (i32.store (i32.const 4) (i32.const 4096))
    (local.set $e (call $fd_read (i32.load (i32.const 100)) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (local.get $e) (then (return (local.get $e))))
    (call $show (i32.load (i32.const 8)))
    (i32.const 0))

  (func (export "_start")
    (local $op i32) (local $p i32) (local $n i32) (local $q i32) (local $m i32) (local $e i32)
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (local.set $op (i32.load8_u (call $arg (i32.const 1))))
    (local.set $p (call $arg (i32.const 2)))
    (local.set $n (call $strlen (local.get $p)))
    (if (i32.ge_u (i32.load (i32.const 16)) (i32.const 4))
      (then
        (local.set $q (call $arg (i32.const 3)))
        (local.set $m (call $strlen (local.get $q)))))
    (block $done
      (if (i32.eq (local.get $op) (i32.const 111)) ;; o
        (then (local.set $e (call $open_and_show (i32.const 1) (local.get $p) (local.get $n)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 79)) ;; O
        (then (local.set $e (call $open_and_show (i32.const 0) (local.get $p) (local.get $n)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 119)) ;; w
        (then
          (local.set $e (call $path_open (i32.const 3) (i32.const 1) (local.get $p) (local.get $n)
            (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 100)))
          (br_if $done (local.get $e))
          (i32.store (i32.const 0) (i32.const 300))
          (i32.store (i32.const 4) (i32.const 1))
          (local.set $e (call $fd_write (i32.load (i32.const 100)) (i32.const 0) (i32.const 1) (i32.const 8)))
          (br $done)))
      (if (i32.eq (local.get $op) (i32.const 115)) ;; s
        (then (local.set $e (call $path_filestat_get (i32.const 3) (i32.const 1)
                (local.get $p) (local.get $n) (i32.const 8192)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 109)) ;; m
        (then (local.set $e (call $path_create_directory (i32.const 3) (local.get $p) (local.get $n)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 100)) ;; d
        (then (local.set $e (call $path_remove_directory (i32.const 3) (local.get $p) (local.get $n)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 117)) ;; u
        (then (local.set $e (call $path_unlink_file (i32.const 3) (local.get $p) (local.get $n)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 114)) ;; r
        (then (local.set $e (call $path_rename (i32.const 3) (local.get $p) (local.get $n)
                (i32.const 3) (local.get $q) (local.get $m)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 108)) ;; l
        (then (local.set $e (call $path_symlink (local.get $q) (local.get $m)
                (i32.const 3) (local.get $p) (local.get $n)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 104)) ;; h
        (then (local.set $e (call $path_link (i32.const 3) (i32.const 0) (local.get $p) (local.get $n)
                (i32.const 3) (local.get $q) (local.get $m)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 116)) ;; t
        (then (local.set $e (call $path_filestat_set_times (i32.const 3) (i32.const 1)
                (local.get $p) (local.get $n) (i64.const 0) (i64.const 0) (i32.const 10)))
              (br $done)))
      (if (i32.eq (local.get $op) (i32.const 107)) ;; k
        (then
          (local.set $e (call $path_readlink (i32.const 3) (local.get $p) (local.get $n)
            (i32.const 8192) (i32.const 4096) (i32.const 8)))
          (br_if $done (local.get $e))
          (call $show (i32.load (i32.const 8)))
          (br $done)))
      (if (i32.eq (local.get $op) (i32.const 83)) ;; S
        (then
          (local.set $e (call $open_and_show (i32.const 1) (local.get $p) (local.get $n)))
          (br_if $done (local.get $e))
          (i32.store (i32.const 0) (i32.const 8192))
          (i32.store (i32.const 4) (i32.const 1))
          (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
          (local.set $e (call $open_and_show (i32.const 1) (local.get $p) (local.get $n)))
          (br $done)))
      (if (i32.eq (local.get $op) (i32.const 102)) ;; f
        (then
          (local.set $e (call $open (i32.const 1) (local.get $p) (local.get $n)))
          (br_if $done (local.get $e))
          (local.set $e (call $fd_filestat_set_size (i32.load (i32.const 100)) (i64.const 0)))
          (br_if $done (local.get $e))
          (local.set $e (call $fd_filestat_set_times (i32.load (i32.const 100))
            (i64.const 0) (i64.const 0) (i32.const 10)))
          (br $done)))
      (local.set $e (i32.const 255)))
    (call $proc_exit (local.get $e))))
