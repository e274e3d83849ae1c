//! Behaviour of the WebAssembly runner and launcher thread, with programs written as
//! WAT and in-memory stdio.

use super::*;
use crossbeam_channel::{unbounded, RecvTimeoutError};
use std::time::{Duration, Instant};

const WASI: &str = "wasi_snapshot_preview1";

/// Writes each chunk into a channel, so a test can wait for a program's output.
#[derive(Clone)]
struct ChannelWriter(Sender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Output(Receiver<Vec<u8>>);

impl Output {
    fn text(&self) -> String {
        let bytes: Vec<u8> = self.0.try_iter().flatten().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until the program has written `expected` (and only that so far).
    fn wait_for(&self, expected: &str) {
        let mut seen = Vec::new();
        while seen.len() < expected.len() {
            match self.0.recv_timeout(Duration::from_secs(10)) {
                Ok(chunk) => seen.extend(chunk),
                Err(err) => panic!("waiting for {expected:?}: {err}"),
            }
        }
        assert_eq!(String::from_utf8_lossy(&seen), expected);
    }
}

fn output() -> (ChannelWriter, Output) {
    let (tx, rx) = unbounded();
    (ChannelWriter(tx), Output(rx))
}

fn options(work_dir: &Path) -> WasmRunOptions {
    WasmRunOptions {
        program_name: "prog.wasm".into(),
        args: Vec::new(),
        env: Vec::new(),
        dirs: Vec::new(),
        work_dir: work_dir.to_path_buf(),
        // Small slices: tests run unoptimised, where wasmi is many times slower.
        fuel_slice: 100_000,
        max_fuel: 0,
        max_memory_bytes: 16 * 1024 * 1024,
        time_limit: None,
    }
}

/// A WASI program: the imports every test program may use, one page of exported
/// memory, and `body` as the inside of the module.
fn program(body: &str) -> Vec<u8> {
    program_with("", body)
}

/// As `program`, with more WASI `imports`.
fn program_with(imports: &str, body: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
  (import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "proc_exit" (func $proc_exit (param i32)))
  {imports}
  (memory (export "memory") 1)
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  {body})"#
    );
    wat::parse_str(text).unwrap()
}

const READY: &str = r#"(data (i32.const 100) "ready\n")"#;

struct Run {
    exit: Result<WasmExit, WasmError>,
    stdout: Output,
    stderr: Output,
    stats: Arc<ModuleStats>,
}

fn run_with(module: &[u8], opts: WasmRunOptions, stdin: Receiver<Vec<u8>>) -> Run {
    let (out, stdout) = output();
    let (err, stderr) = output();
    let stats = Arc::new(ModuleStats::default());
    let exit = run_wasm(module, opts, stdin, out, err, &StopFlag::default(), &stats);
    Run {
        exit,
        stdout,
        stderr,
        stats,
    }
}

fn run_plain(module: &[u8]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (_keep, stdin) = unbounded();
    run_with(module, options(dir.path()), stdin)
}

/// A program running on its own thread, to be stopped or fed from the test.
struct Background {
    stop: StopFlag,
    stdin: Option<Sender<Vec<u8>>>,
    stdout: Output,
    done: Receiver<Result<WasmExit, WasmError>>,
    _dir: tempfile::TempDir,
}

fn run_in_background(module: Vec<u8>, adjust: impl FnOnce(&mut WasmRunOptions)) -> Background {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    adjust(&mut opts);
    let (stdin_tx, stdin_rx) = unbounded();
    let (out, stdout) = output();
    let (err, _) = output();
    let stop = StopFlag::default();
    let (done_tx, done) = unbounded();
    let thread_stop = stop.clone();
    thread::spawn(move || {
        let stats = ModuleStats::default();
        let exit = run_wasm(&module, opts, stdin_rx, out, err, &thread_stop, &stats);
        let _ = done_tx.send(exit);
    });
    Background {
        stop,
        stdin: Some(stdin_tx),
        stdout,
        done,
        _dir: dir,
    }
}

impl Background {
    fn exit(&self) -> WasmExit {
        match self.done.recv_timeout(Duration::from_secs(10)) {
            Ok(exit) => exit.unwrap(),
            Err(RecvTimeoutError::Timeout) => panic!("program did not end"),
            Err(err) => panic!("runner thread died: {err}"),
        }
    }
}

#[test]
fn hello_program_writes_its_output_and_exits_with_code_0() {
    let module = program(
        r#"(data (i32.const 100) "hello\n")
        (func (export "_start") (call $write (i32.const 1) (i32.const 100) (i32.const 6)))"#,
    );
    let run = run_plain(&module);
    let exit = run.exit.unwrap();
    assert_eq!(exit, WasmExit::Exited(0));
    assert_eq!(exit.code(), Some(0));
    assert_eq!(exit.reason(), "exited with code 0");
    assert_eq!(run.stdout.text(), "hello\n");
    assert_eq!(run.stderr.text(), "");
    assert_eq!(run.stats.mem_bytes(), 65_536);
}

#[test]
fn stderr_output_goes_to_the_stderr_writer() {
    let module = program(
        r#"(data (i32.const 100) "oops\n")
        (func (export "_start") (call $write (i32.const 2) (i32.const 100) (i32.const 5)))"#,
    );
    let run = run_plain(&module);
    assert_eq!(run.stderr.text(), "oops\n");
    assert_eq!(run.stdout.text(), "");
}

#[test]
fn program_sees_program_name_arguments_and_environment() {
    let module = program_with(
        &format!(
            r#"(import "{WASI}" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
        (import "{WASI}" "args_get" (func $args_get (param i32 i32) (result i32)))
        (import "{WASI}" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
        (import "{WASI}" "environ_get" (func $env_get (param i32 i32) (result i32)))"#
        ),
        r#"(func (export "_start")
          (drop (call $args_sizes (i32.const 16) (i32.const 20)))
          (drop (call $args_get (i32.const 1024) (i32.const 4096)))
          (call $write (i32.const 1) (i32.const 4096) (i32.load (i32.const 20)))
          (drop (call $env_sizes (i32.const 16) (i32.const 20)))
          (drop (call $env_get (i32.const 1024) (i32.const 8192)))
          (call $write (i32.const 1) (i32.const 8192) (i32.load (i32.const 20))))"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.args = vec!["a".into(), "b c".into()];
    opts.env = vec![("K".into(), "V".into()), ("X".into(), "1".into())];
    let (_keep, stdin) = unbounded();

    let run = run_with(&module, opts, stdin);

    assert_eq!(run.exit.unwrap(), WasmExit::Exited(0));
    assert_eq!(run.stdout.text(), "prog.wasm\0a\0b c\0K=V\0X=1\0");
}

#[test]
fn proc_exit_gives_the_exit_code() {
    let module = program(r#"(func (export "_start") (call $proc_exit (i32.const 3)))"#);
    let exit = run_plain(&module).exit.unwrap();
    assert_eq!(exit, WasmExit::Exited(3));
    assert_eq!(exit.reason(), "exited with code 3");
}

#[test]
fn unreachable_traps_without_an_exit_code() {
    let module = program(r#"(func (export "_start") unreachable)"#);
    let exit = run_plain(&module).exit.unwrap();
    assert_eq!(exit.code(), None);
    assert!(exit.reason().starts_with("trap: "), "{}", exit.reason());
    assert!(exit.reason().contains("unreachable"), "{}", exit.reason());
}

#[test]
fn tight_loop_is_stopped_by_the_stop_flag_within_a_second() {
    let module = program(r#"(func (export "_start") (loop $spin (br $spin)))"#);
    let background = run_in_background(module, |_| {});
    // Let it get going: the runner has not ended by itself.
    assert!(background
        .done
        .recv_timeout(Duration::from_millis(200))
        .is_err());

    let raised = Instant::now();
    background.stop.raise();
    let exit = background.exit();
    let elapsed = raised.elapsed();

    eprintln!("tight loop stopped {elapsed:?} after the flag was raised");
    assert_eq!(exit, WasmExit::Stopped);
    assert_eq!(exit.reason(), "stopped");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

#[test]
fn time_limit_stops_a_program_that_runs_too_long() {
    let module = program(r#"(func (export "_start") (loop $spin (br $spin)))"#);
    let background = run_in_background(module, |opts| {
        opts.time_limit = Some(Duration::from_millis(200));
    });
    let exit = background.exit();
    assert_eq!(exit, WasmExit::TimeLimit(Duration::from_millis(200)));
    assert_eq!(exit.reason(), "time limit of 0.2 s reached");
}

#[test]
fn fuel_exhaustion_ends_the_program_with_a_clear_reason() {
    let module = program(r#"(func (export "_start") (loop $spin (br $spin)))"#);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_fuel = 1_000_000;
    let (_keep, stdin) = unbounded();

    let run = run_with(&module, opts, stdin);

    let exit = run.exit.unwrap();
    assert_eq!(exit, WasmExit::FuelExhausted(1_000_000));
    assert_eq!(exit.reason(), "fuel exhausted after 1000000 units");
    let burnt = run.stats.fuel_consumed.load(Ordering::Relaxed);
    assert!(burnt <= 1_000_000 && burnt > 900_000, "{burnt}");
}

#[test]
fn memory_growth_past_the_limit_returns_minus_one_to_the_program() {
    let module = program(
        r#"(func (export "_start") (local $first i32) (local $second i32)
          (local.set $first (memory.grow (i32.const 1)))
          (local.set $second (memory.grow (i32.const 1)))
          (call $proc_exit
            (select (i32.const 42) (i32.const 1)
              (i32.and (i32.eq (local.get $first) (i32.const 1))
                       (i32.eq (local.get $second) (i32.const -1))))))"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_memory_bytes = 2 * 65_536;
    let (_keep, stdin) = unbounded();

    let run = run_with(&module, opts, stdin);

    assert_eq!(run.exit.unwrap(), WasmExit::Exited(42));
    assert_eq!(run.stats.mem_bytes(), 2 * 65_536);
}

#[test]
fn table_growth_past_the_limit_returns_minus_one_to_the_program() {
    // Tables live outside linear memory; unbounded, one `table.grow` could take
    // gigabytes and get the whole runtime killed.
    let module = program(
        r#"(table $t 1 funcref)
        (func (export "_start")
          (call $proc_exit
            (select (i32.const 42) (i32.const 1)
              (i32.eq (table.grow $t (ref.null func) (i32.const 50000000)) (i32.const -1)))))"#,
    );

    let run = run_plain(&module);

    assert_eq!(run.exit.unwrap(), WasmExit::Exited(42));
}

#[test]
fn table_growth_that_costs_more_than_a_fuel_slice_completes() {
    let module = program(
        r#"(table $t 1 funcref)
        (func (export "_start")
          (call $proc_exit
            (select (i32.const 42) (i32.const 1)
              (i32.eq (table.grow $t (ref.null func) (i32.const 5000000)) (i32.const 1)))))"#,
    );
    let background = run_in_background(module, |opts| opts.max_memory_bytes = 256 << 20);

    assert_eq!(background.exit(), WasmExit::Exited(42));
}

#[test]
fn one_instruction_that_costs_more_than_a_fuel_slice_completes() {
    // Filling 8 MiB at once costs more fuel than a slice holds; the runner must hand
    // out enough for the instruction and the block it restarts in, or it spins forever.
    let module = wat::parse_str(format!(
        r#"(module
          (import "{WASI}" "proc_exit" (func $proc_exit (param i32)))
          (memory (export "memory") 128)
          (func (export "_start")
            (memory.fill (i32.const 0) (i32.const 7) (i32.const 8388608))
            (call $proc_exit (i32.load8_u (i32.const 8388607)))))"#
    ))
    .unwrap();
    let background = run_in_background(module, |opts| opts.max_memory_bytes = 8 << 20);

    assert_eq!(background.exit(), WasmExit::Exited(7));
}

#[test]
fn second_memory_cannot_double_the_memory_limit() {
    let module = wat::parse_str(
        r#"(module (memory (export "memory") 1) (memory $more 1) (func (export "_start")))"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_memory_bytes = 65_536;
    let (_keep, stdin) = unbounded();

    let err = run_with(&module, opts, stdin).exit.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("module file 'prog.wasm' cannot be instantiated: "),
        "{err}"
    );
}

#[test]
fn initial_memory_over_the_limit_fails_to_start() {
    let module =
        wat::parse_str(r#"(module (memory (export "memory") 4) (func (export "_start")))"#)
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_memory_bytes = 65_536;
    let (_keep, stdin) = unbounded();

    let err = run_with(&module, opts, stdin).exit.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("module file 'prog.wasm' cannot be instantiated: "),
        "{err}"
    );
}

/// Echoes stdin to stdout through a 16-byte buffer until end-of-file.
const ECHO: &str = r#"(func (export "_start") (local $n i32)
  (block $eof (loop $more
    (i32.store (i32.const 32) (i32.const 256))
    (i32.store (i32.const 36) (i32.const 16))
    (drop (call $fd_read (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 40)))
    (local.set $n (i32.load (i32.const 40)))
    (br_if $eof (i32.eqz (local.get $n)))
    (call $write (i32.const 1) (i32.const 256) (local.get $n))
    (br $more))))"#;

#[test]
fn stdin_is_echoed_until_the_sender_is_dropped() {
    let module = program(ECHO);
    let dir = tempfile::tempdir().unwrap();
    let (stdin_tx, stdin) = unbounded();
    stdin_tx.send(b"abc\n".to_vec()).unwrap();
    stdin_tx.send(Vec::new()).unwrap();
    stdin_tx
        .send(b"a line longer than the sixteen byte buffer\n".to_vec())
        .unwrap();
    drop(stdin_tx);

    let run = run_with(&module, options(dir.path()), stdin);

    assert_eq!(run.exit.unwrap(), WasmExit::Exited(0));
    assert_eq!(
        run.stdout.text(),
        "abc\na line longer than the sixteen byte buffer\n"
    );
}

#[test]
fn blocked_stdin_read_wakes_with_end_of_file_when_the_sender_is_dropped() {
    let module = program(&format!(
        r#"{READY}
        (func (export "_start")
          (call $write (i32.const 1) (i32.const 100) (i32.const 6))
          (i32.store (i32.const 32) (i32.const 256))
          (i32.store (i32.const 36) (i32.const 16))
          (drop (call $fd_read (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 40)))
          (call $proc_exit (i32.add (i32.const 7) (i32.load (i32.const 40)))))"#
    ));
    let mut background = run_in_background(module, |_| {});
    background.stdout.wait_for("ready\n");

    background.stdin = None;

    assert_eq!(background.exit(), WasmExit::Exited(7));
}

#[test]
fn program_blocked_on_stdin_is_stopped_by_the_stop_flag() {
    let module = program(&format!(
        r#"{READY}
        (func (export "_start")
          (call $write (i32.const 1) (i32.const 100) (i32.const 6))
          (i32.store (i32.const 32) (i32.const 256))
          (i32.store (i32.const 36) (i32.const 16))
          (drop (call $fd_read (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 40))))"#
    ));
    let background = run_in_background(module, |_| {});
    background.stdout.wait_for("ready\n");

    let raised = Instant::now();
    background.stop.raise();
    let exit = background.exit();

    eprintln!("stdin reader stopped {:?} after the flag", raised.elapsed());
    assert_eq!(exit, WasmExit::Stopped);
}

#[test]
fn program_reading_past_end_of_file_forever_is_still_stopped() {
    let module = program(&format!(
        r#"{READY}
        (func (export "_start")
          (call $write (i32.const 1) (i32.const 100) (i32.const 6))
          (loop $again
            (i32.store (i32.const 32) (i32.const 256))
            (i32.store (i32.const 36) (i32.const 16))
            (drop (call $fd_read (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 40)))
            (br $again)))"#
    ));
    let mut background = run_in_background(module, |_| {});
    background.stdout.wait_for("ready\n");
    background.stdin = None;
    assert!(background
        .done
        .recv_timeout(Duration::from_millis(200))
        .is_err());

    background.stop.raise();

    assert_eq!(background.exit(), WasmExit::Stopped);
}

#[test]
fn long_sleep_is_cut_short_by_the_stop_flag() {
    // poll_oneoff on one relative clock subscription of an hour, as wasi-libc's sleep.
    let module = program_with(
        &format!(
            r#"(import "{WASI}" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))"#
        ),
        &format!(
            r#"{READY}
        (func (export "_start")
          (call $write (i32.const 1) (i32.const 100) (i32.const 6))
          (i64.store (i32.const 1024) (i64.const 1))
          (i32.store8 (i32.const 1032) (i32.const 0))
          (i32.store (i32.const 1040) (i32.const 1))
          (i64.store (i32.const 1048) (i64.const 3600000000000))
          (i64.store (i32.const 1056) (i64.const 0))
          (i32.store16 (i32.const 1064) (i32.const 0))
          (drop (call $poll (i32.const 1024) (i32.const 2048) (i32.const 1) (i32.const 40))))"#
        ),
    );
    let background = run_in_background(module, |_| {});
    background.stdout.wait_for("ready\n");

    background.stop.raise();

    assert_eq!(background.exit(), WasmExit::Stopped);
}

#[test]
fn short_sleep_completes_normally() {
    let module = program_with(
        &format!(
            r#"(import "{WASI}" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))"#
        ),
        r#"(func (export "_start")
          (i64.store (i32.const 1024) (i64.const 1))
          (i32.store8 (i32.const 1032) (i32.const 0))
          (i32.store (i32.const 1040) (i32.const 1))
          (i64.store (i32.const 1048) (i64.const 20000000))
          (i64.store (i32.const 1056) (i64.const 0))
          (i32.store16 (i32.const 1064) (i32.const 0))
          (call $proc_exit (i32.add
            (call $poll (i32.const 1024) (i32.const 2048) (i32.const 1) (i32.const 40))
            (i32.mul (i32.const 10) (i32.load (i32.const 40))))))"#,
    );
    let started = Instant::now();
    let exit = run_plain(&module).exit.unwrap();
    // errno 0 plus ten times one event.
    assert_eq!(exit, WasmExit::Exited(10));
    assert!(started.elapsed() >= Duration::from_millis(20));
}

#[test]
fn stdout_presents_itself_as_a_character_device() {
    let module = program_with(
        &format!(
            r#"(import "{WASI}" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))"#
        ),
        r#"(func (export "_start")
          (drop (call $fdstat (i32.const 1) (i32.const 1024)))
          (call $proc_exit (i32.load8_u (i32.const 1024))))"#,
    );
    // WASI filetype 2 is character_device; wasi-libc then line-buffers stdout.
    assert_eq!(run_plain(&module).exit.unwrap(), WasmExit::Exited(2));
}

#[test]
fn requested_folders_are_created_in_the_work_folder_and_preopened_by_name() {
    let module = program_with(
        &format!(
            r#"(import "{WASI}" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
        (import "{WASI}" "fd_prestat_dir_name" (func $dir_name (param i32 i32 i32) (result i32)))"#
        ),
        r#"(func (export "_start")
          (drop (call $prestat (i32.const 3) (i32.const 1024)))
          (drop (call $dir_name (i32.const 3) (i32.const 2048) (i32.load (i32.const 1028))))
          (call $write (i32.const 1) (i32.const 2048) (i32.load (i32.const 1028))))"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.dirs = vec!["data/in".into()];
    let (_keep, stdin) = unbounded();

    let run = run_with(&module, opts, stdin);

    assert_eq!(run.exit.unwrap(), WasmExit::Exited(0));
    assert_eq!(run.stdout.text(), "data/in");
    assert!(dir.path().join("data/in").is_dir());
}

#[test]
fn folders_that_are_not_plain_relative_names_are_refused() {
    let module = program(r#"(func (export "_start"))"#);
    for bad in ["../up", "/etc", "a/../../b", ".", "", "a\\b"] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path());
        opts.dirs = vec![bad.into()];
        let (_keep, stdin) = unbounded();
        let err = run_with(&module, opts, stdin).exit.unwrap_err();
        assert!(matches!(err, WasmError::UnsafeDir(_)), "{bad}: {err}");
    }
}

#[test]
fn invalid_webassembly_is_refused_with_the_file_name() {
    let err = run_plain(b"not a wasm file").exit.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("module file 'prog.wasm' is not valid WebAssembly: "),
        "{err}"
    );
}

#[test]
fn module_without_start_is_refused() {
    let module = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
    let err = run_plain(&module).exit.unwrap_err();
    assert!(matches!(err, WasmError::MissingStart { .. }), "{err}");
    assert!(err.to_string().contains("'_start'"), "{err}");
}

#[test]
fn module_importing_unknown_host_functions_is_refused() {
    let module = wat::parse_str(
        r#"(module (import "env" "magic" (func)) (memory (export "memory") 1)
           (func (export "_start")))"#,
    )
    .unwrap();
    let err = run_plain(&module).exit.unwrap_err();
    assert!(err.to_string().contains("cannot be instantiated"), "{err}");
    assert!(err.to_string().contains("magic"), "{err}");
}

#[test]
fn cpu_time_is_recorded_for_a_busy_program() {
    let module = program(r#"(func (export "_start") (loop $spin (br $spin)))"#);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_fuel = 3_000_000;
    let (_keep, stdin) = unbounded();
    let run = run_with(&module, opts, stdin);
    assert!(matches!(run.exit.unwrap(), WasmExit::FuelExhausted(_)));
    assert!(run.stats.cpu_time_ns.load(Ordering::Relaxed) > 0);
}

// The launcher thread body, with a file store and in-memory output.

struct Launch {
    events: Receiver<ModuleEvent>,
    stdout: Output,
    work_dir: PathBuf,
    _store: tempfile::TempDir,
    _state: tempfile::TempDir,
}

#[test]
fn a_time_limit_too_far_to_reach_means_no_limit_instead_of_a_clock_overflow() {
    let mut far = request("hello.wasm");
    far.limit_sec = Some(1e19);
    assert_eq!(crate::launcher::module_time_limit(&far), None);

    let mut near = request("hello.wasm");
    near.limit_sec = Some(1.5);
    assert_eq!(
        crate::launcher::module_time_limit(&near),
        Some(Duration::from_millis(1500))
    );
}

fn request(file: &str) -> ModuleRequest {
    ModuleRequest {
        uuid: "4f2c7a1e-0000-4000-8000-000000000001".into(),
        name: "hello".into(),
        filetype: crate::protocol::FileType::Wasm,
        file: file.into(),
        location: "apps".into(),
        argv: Vec::new(),
        env: Vec::new(),
        dirs: Vec::new(),
        apis: Vec::new(),
        limit_sec: None,
        namespace: "public".into(),
        scene: String::new(),
        sha256: Default::default(),
        raw: serde_json::Value::Null,
    }
}

fn launch(file: &str, program_bytes: &[u8]) -> Launch {
    launch_in("modules/4f2c7a1e", file, program_bytes)
}

/// As `launch`, with the work folder at `work_dir` inside a fresh state folder.
fn launch_in(work_dir: &str, file: &str, program_bytes: &[u8]) -> Launch {
    let store = tempfile::tempdir().unwrap();
    fs::create_dir_all(store.path().join("apps")).unwrap();
    fs::write(store.path().join("apps/hello.wasm"), program_bytes).unwrap();
    let state = tempfile::tempdir().unwrap();
    fs::create_dir_all(state.path().join("modules/other")).unwrap();
    fs::write(
        state.path().join("modules/other/keep"),
        b"another module's file",
    )
    .unwrap();
    let work_dir = state.path().join(work_dir);
    let (events_tx, events) = unbounded();
    let (_stdin_tx, stdin) = unbounded();
    let (out, stdout) = output();
    let (err, _) = output();
    let job = ModuleJob {
        request: request(file),
        work_dir: work_dir.clone(),
        stdin,
        events: events_tx,
        stop: StopFlag::default(),
        stats: Arc::new(ModuleStats::default()),
        settings: WasmSettings::default(),
        store: Store::File(store.path().to_path_buf()),
        fetch: FetchLimits {
            timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(60),
            max_file_bytes: 1024 * 1024,
            max_files: 100,
            max_total_bytes: 1024 * 1024,
        },
    };
    run_module(job, out, err);
    Launch {
        events,
        stdout,
        work_dir,
        _store: store,
        _state: state,
    }
}

#[test]
fn launcher_reports_started_then_exited_and_removes_the_work_folder() {
    let module = program(
        r#"(data (i32.const 100) "hello\n")
        (func (export "_start") (call $write (i32.const 1) (i32.const 100) (i32.const 6)))"#,
    );
    let launch = launch("hello.wasm", &module);
    let events: Vec<ModuleEvent> = launch.events.try_iter().collect();
    let uuid = "4f2c7a1e-0000-4000-8000-000000000001".to_string();
    assert_eq!(
        events,
        vec![
            ModuleEvent::Started { uuid: uuid.clone() },
            ModuleEvent::Exited {
                uuid,
                code: Some(0),
                reason: "exited with code 0".into()
            },
        ]
    );
    assert_eq!(launch.stdout.text(), "hello\n");
    assert!(!launch.work_dir.exists());
}

#[test]
fn launcher_reports_a_missing_program_file_as_failed() {
    let launch = launch("missing.wasm", b"");
    let events: Vec<ModuleEvent> = launch.events.try_iter().collect();
    assert_eq!(
        events,
        vec![ModuleEvent::Failed {
            uuid: "4f2c7a1e-0000-4000-8000-000000000001".into(),
            error: "program file 'apps/missing.wasm' not found in the store".into(),
        }]
    );
    assert!(!launch.work_dir.exists());
}

#[test]
fn work_folder_that_is_not_a_folder_of_its_own_is_refused_and_nothing_is_removed() {
    let module = program(r#"(func (export "_start"))"#);
    for work_dir in ["modules/..", "modules/.", "modules/other/.."] {
        let launch = launch_in(work_dir, "hello.wasm", &module);
        let events: Vec<ModuleEvent> = launch.events.try_iter().collect();
        match events.as_slice() {
            [ModuleEvent::Failed { error, .. }] => {
                assert!(error.contains(work_dir), "{error}")
            }
            other => panic!("unexpected events for '{work_dir}': {other:?}"),
        }
        let kept = launch._state.path().join("modules/other/keep");
        assert!(kept.exists(), "'{work_dir}' removed another module's file");
    }
}

#[test]
fn launcher_reports_invalid_webassembly_as_failed() {
    let launch = launch("hello.wasm", b"garbage");
    let events: Vec<ModuleEvent> = launch.events.try_iter().collect();
    match events.as_slice() {
        [ModuleEvent::Failed { error, .. }] => assert!(
            error.starts_with("module file 'hello.wasm' is not valid WebAssembly: "),
            "{error}"
        ),
        other => panic!("unexpected events {other:?}"),
    }
    assert!(!launch.work_dir.exists());
}

#[test]
fn large_functions_run_even_with_small_fuel_slices() {
    // Lazily compiled functions would be charged their translation on first call,
    // more than one slice holds, which wasmi reports as an error, not as a pause.
    let nops = "nop ".repeat(20_000);
    let module = program(&format!(
        r#"(func $big {nops})
        (func (export "_start") (call $big) (call $proc_exit (i32.const 9)))"#
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.fuel_slice = 1_000;
    let (_keep, stdin) = unbounded();

    let run = run_with(&module, opts, stdin);

    assert_eq!(run.exit.unwrap(), WasmExit::Exited(9));
}

/// Every slice resumes the interpreter; none may leave stack behind (a stack overflow
/// would abort the whole runtime).
#[test]
fn busy_program_survives_thousands_of_fuel_slices() {
    let module = program(r#"(func (export "_start") (loop $spin (br $spin)))"#);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.fuel_slice = 1_000;
    opts.max_fuel = 5_000_000;
    let (_keep, stdin) = unbounded();
    let run = run_with(&module, opts, stdin);
    assert!(matches!(run.exit.unwrap(), WasmExit::FuelExhausted(_)));
}
