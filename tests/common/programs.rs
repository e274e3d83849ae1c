//! WebAssembly test programs written as WAT text, assembled with the `wat` crate.
//! Each one exercises one runtime behaviour (stdout, stderr, argv/env, stdin, exit
//! codes, traps, endless loops, memory growth) without needing a C toolchain.
//!
//! Not for: C programs built from tests/programs (another helper owns those).

const WASI: &str = "wasi_snapshot_preview1";

fn assemble(text: &str) -> Vec<u8> {
    match wat::parse_str(text) {
        Ok(bytes) => bytes,
        Err(e) => panic!("test program does not assemble: {e}\n{text}"),
    }
}

/// Escape text for a WAT data segment.
fn wat_string(text: &str) -> String {
    text.bytes().map(|b| format!("\\{b:02x}")).collect()
}

/// A program that writes `text` to file descriptor `fd` once and returns.
pub fn print(fd: u32, text: &str) -> Vec<u8> {
    let len = text.len();
    let data = wat_string(text);
    assemble(&format!(
        r#"(module
  (import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{data}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const {fd}) (i32.const 0) (i32.const 1) (i32.const 8)))))"#
    ))
}

/// Prints `hello world\n` on stdout.
pub fn hello() -> Vec<u8> {
    print(1, "hello world\n")
}

/// Prints `oops on stderr\n` on stderr.
pub fn stderr() -> Vec<u8> {
    print(2, "oops on stderr\n")
}

/// Prints every argument, then every environment entry, one per line.
pub fn args_env() -> Vec<u8> {
    assemble(&format!(
        r#"(module
  (import "{WASI}" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "{WASI}" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "{WASI}" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "{WASI}" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; 0..8 iovec, 8 count, 12 buffer size, 16 nwritten, 1024.. pointers,
  ;; 8192.. argument strings, 32768.. environment strings
  (func $newlines (param $p i32) (param $n i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $i))))
          (then (i32.store8 (i32.add (local.get $p) (local.get $i)) (i32.const 10))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  (func $write (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))))
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 8) (i32.const 12)))
    (drop (call $args_get (i32.const 1024) (i32.const 8192)))
    (call $newlines (i32.const 8192) (i32.load (i32.const 12)))
    (call $write (i32.const 8192) (i32.load (i32.const 12)))
    (drop (call $environ_sizes_get (i32.const 8) (i32.const 12)))
    (drop (call $environ_get (i32.const 1024) (i32.const 32768)))
    (call $newlines (i32.const 32768) (i32.load (i32.const 12)))
    (call $write (i32.const 32768) (i32.load (i32.const 12)))))"#
    ))
}

/// Copies stdin to stdout until end of input.
pub fn echo() -> Vec<u8> {
    assemble(&format!(
        r#"(module
  (import "{WASI}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0..8 iovec, 8 nread, 12 nwritten, 1024.. buffer
  (func (export "_start")
    (block $done
      (loop $next
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 4096))
        (br_if $done
          (i32.ne (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
                  (i32.const 0)))
        (br_if $done (i32.eqz (i32.load (i32.const 8))))
        (i32.store (i32.const 4) (i32.load (i32.const 8)))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
        (br $next)))))"#
    ))
}

/// Ends with `proc_exit(code)`.
pub fn exit_code(code: i32) -> Vec<u8> {
    assemble(&format!(
        r#"(module
  (import "{WASI}" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $proc_exit (i32.const {code}))))"#
    ))
}

/// Traps at once (`unreachable`).
pub fn trap() -> Vec<u8> {
    assemble(
        r#"(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))"#,
    )
}

/// Loops forever without calling the host.
pub fn spin() -> Vec<u8> {
    assemble(
        r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))"#,
    )
}

/// Tries to grow its memory by `pages` 64 KiB pages; prints `grow failed\n` when
/// `memory.grow` returns -1, else `grow ok\n`.
pub fn grow_memory(pages: u32) -> Vec<u8> {
    let failed = wat_string("grow failed\n");
    let ok = wat_string("grow ok\n");
    assemble(&format!(
        r#"(module
  (import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{failed}")
  (data (i32.const 128) "{ok}")
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const {pages})) (i32.const -1))
      (then
        (i32.store (i32.const 0) (i32.const 64))
        (i32.store (i32.const 4) (i32.const 12)))
      (else
        (i32.store (i32.const 0) (i32.const 128))
        (i32.store (i32.const 4) (i32.const 8))))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#
    ))
}

/// Bytes that are not WebAssembly at all.
pub fn not_wasm() -> Vec<u8> {
    b"this is not a WebAssembly module\n".to_vec()
}

/// Prints `count 1` ... `count {lines}` on stdout, one line per write, sleeping
/// `interval_ms` (a `poll_oneoff` clock subscription) between lines, then returns.
pub fn ticker(lines: u32, interval_ms: u64) -> Vec<u8> {
    let interval_ns = interval_ms * 1_000_000;
    assemble(&format!(
        r#"(module
  (import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0..8 iovec, 8 nwritten, 12 nevents, 256..320 line (built backwards from 319),
  ;; 1024..1072 clock subscription, 1104..1136 event
  (func $line (param $n i32)
    (local $p i32)
    (i32.store8 (i32.const 319) (i32.const 10))
    (local.set $p (i32.const 319))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (i32.ne (local.get $n) (i32.const 0))))
    (local.set $p (i32.sub (local.get $p) (i32.const 6)))
    (i32.store8 (local.get $p) (i32.const 99))
    (i32.store8 offset=1 (local.get $p) (i32.const 111))
    (i32.store8 offset=2 (local.get $p) (i32.const 117))
    (i32.store8 offset=3 (local.get $p) (i32.const 110))
    (i32.store8 offset=4 (local.get $p) (i32.const 116))
    (i32.store8 offset=5 (local.get $p) (i32.const 32))
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (i32.sub (i32.const 320) (local.get $p)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $pause
    ;; userdata 0, tag 0 (clock), monotonic clock, relative timeout, precision 0
    (i64.store (i32.const 1024) (i64.const 0))
    (i32.store8 (i32.const 1032) (i32.const 0))
    (i32.store (i32.const 1040) (i32.const 1))
    (i64.store (i32.const 1048) (i64.const {interval_ns}))
    (i64.store (i32.const 1056) (i64.const 0))
    (i32.store16 (i32.const 1064) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 1024) (i32.const 1104) (i32.const 1) (i32.const 12))))
  (func (export "_start")
    (local $n i32)
    (local.set $n (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (local.get $n) (i32.const {lines})))
        (call $line (local.get $n))
        (if (i32.lt_u (local.get $n) (i32.const {lines})) (then (call $pause)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))))"#
    ))
}
