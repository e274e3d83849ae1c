//! Running one WASI preview 1 program in `wasmi`, independent of MQTT: compile,
//! link WASI with the runtime's stdio, preopen the module's folders, then call
//! `_start` in fuel slices, checking between slices whether the module must stop,
//! and say how it ended.
//!
//! Not for: fetching the program, threads or events (`wasm.rs`).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use wasmi::{
    CompilationMode, Config, Engine, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, TypedFunc, TypedResumableCall,
};
use wasmi_wasi::sync::{ambient_authority, Dir};
use wasmi_wasi::wasi_common::table::Table;
use wasmi_wasi::WasiCtx;

use super::host::{
    ChannelStdin, Interrupt, InterruptibleSched, Interruption, OutputFile, SharedWriter,
};
use crate::launcher::StopFlag;
use crate::stats::{thread_cpu_time_ns, ModuleStats};

/// Smallest fuel slice used, whatever the settings say, so a zero does not make the
/// runner spin on empty slices.
const MIN_FUEL_SLICE: u64 = 1_000;
/// Wall time a fuel slice aims at: the stop flag is checked at least this often.
/// Fuel runs at very different speeds on a Pi, a gateway or in a debug build, so the
/// slice adapts to the machine; `fuel_slice` is its upper bound.
const SLICE_TARGET: Duration = Duration::from_millis(20);

/// Tables a module may have (compilers emit one; reference types may add a few).
const MAX_TABLES: usize = 4;
/// Host bytes a table element takes, for bounding tables by `max_memory_bytes`.
const TABLE_ELEMENT_BYTES: usize = 8;

/// How to run one program.
#[derive(Debug, Clone)]
pub struct WasmRunOptions {
    /// Program file name: `argv[0]`, and the name used in errors.
    pub program_name: String,
    /// Arguments after `argv[0]`.
    pub args: Vec<String>,
    /// Environment, `K=V` pairs in order.
    pub env: Vec<(String, String)>,
    /// Folders to preopen: relative names, each created inside `work_dir` and shown to
    /// the program under that same name. Never a host path of the request's choosing.
    pub dirs: Vec<String>,
    /// The module's own folder (must exist).
    pub work_dir: PathBuf,
    /// Fuel per slice; the stop flag and time limit are checked between slices.
    pub fuel_slice: u64,
    /// Total fuel the program may burn; 0 = unlimited.
    pub max_fuel: u64,
    /// Largest linear memory; `memory.grow` past it returns -1 to the program. Tables
    /// together are bounded by the same number of bytes.
    pub max_memory_bytes: usize,
    /// Wall time the program may run, counted from the call of `_start`.
    pub time_limit: Option<Duration>,
}

/// How a program ended once it had started.
#[derive(Debug, Clone, PartialEq)]
pub enum WasmExit {
    /// Returned from `_start` (code 0) or called `proc_exit(code)`.
    Exited(i32),
    /// Trapped; the message says why.
    Trap(String),
    /// The stop flag was raised.
    Stopped,
    /// The request's time limit passed.
    TimeLimit(Duration),
    /// The program burnt all of `max_fuel`.
    FuelExhausted(u64),
}

impl WasmExit {
    /// Exit status, when the program gave one.
    pub fn code(&self) -> Option<i32> {
        match self {
            WasmExit::Exited(code) => Some(*code),
            _ => None,
        }
    }

    /// Why it ended, in words: `exited with code 3`, `trap: ...`, `stopped`,
    /// `time limit of 2 s reached`, `fuel exhausted after 1000 units`.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WasmExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WasmExit::Exited(code) => write!(f, "exited with code {code}"),
            WasmExit::Trap(message) => write!(f, "trap: {message}"),
            WasmExit::Stopped => write!(f, "stopped"),
            WasmExit::TimeLimit(limit) => {
                write!(f, "time limit of {} s reached", limit.as_secs_f64())
            }
            WasmExit::FuelExhausted(fuel) => write!(f, "fuel exhausted after {fuel} units"),
        }
    }
}

/// Why a program could not be started; the text goes to the orchestrator.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("module file '{file}' is not valid WebAssembly: {reason}")]
    Invalid { file: String, reason: String },
    #[error("module file '{file}' has no WASI entry point '_start' (a function without parameters or results)")]
    MissingStart { file: String },
    #[error("module file '{file}' cannot be instantiated: {reason}")]
    Instantiate { file: String, reason: String },
    #[error("folder '{0}' cannot be preopened: only relative names inside the module's folder are allowed")]
    UnsafeDir(String),
    #[error("cannot prepare folder '{dir}': {reason}")]
    Dir { dir: String, reason: String },
    #[error("cannot set up WASI for module file '{file}': {reason}")]
    Wasi { file: String, reason: String },
}

struct HostState {
    wasi: WasiCtx,
    limits: StoreLimits,
}

/// A compiled and instantiated program, ready to run.
pub struct PreparedModule {
    store: Store<HostState>,
    start: TypedFunc<(), ()>,
    memory: Option<Memory>,
    interrupt: Arc<Interrupt>,
    outputs: Vec<SharedWriter>,
    fuel_slice: u64,
    /// Fuel of the next slice, adapted to `SLICE_TARGET`.
    slice: u64,
    max_fuel: u64,
    time_limit: Option<Duration>,
    cpu_at_start_ns: u64,
}

/// Compile, instantiate and run a program to its end on this thread.
pub fn run_wasm(
    module_bytes: &[u8],
    opts: WasmRunOptions,
    stdin: Receiver<Vec<u8>>,
    stdout: impl Write + Send + Sync + 'static,
    stderr: impl Write + Send + Sync + 'static,
    stop: &StopFlag,
    stats: &ModuleStats,
) -> Result<WasmExit, WasmError> {
    let prepared = prepare(module_bytes, opts, stdin, stdout, stderr, stop)?;
    Ok(prepared.run(stats))
}

/// Compile and instantiate a program, with its stdio, arguments, environment and
/// preopened folders. Nothing of the program runs yet, except a `start` section.
pub fn prepare(
    module_bytes: &[u8],
    opts: WasmRunOptions,
    stdin: Receiver<Vec<u8>>,
    stdout: impl Write + Send + Sync + 'static,
    stderr: impl Write + Send + Sync + 'static,
    stop: &StopFlag,
) -> Result<PreparedModule, WasmError> {
    let cpu_at_start_ns = thread_cpu_time_ns();
    let file = opts.program_name.clone();
    let fuel_slice = opts.fuel_slice.max(MIN_FUEL_SLICE);

    let mut config = Config::default();
    config.consume_fuel(true);
    // Lazy translation charges a function's compilation to the fuel of its first
    // call and fails (not pauses) when the slice cannot pay for it; compile up front.
    config.compilation_mode(CompilationMode::Eager);
    let engine = Engine::new(&config);
    let module = Module::new(&engine, module_bytes).map_err(|err| WasmError::Invalid {
        file: file.clone(),
        reason: err.to_string(),
    })?;

    let interrupt = Arc::new(Interrupt::new(stop.clone()));
    let stdout: SharedWriter = Arc::new(Mutex::new(stdout));
    let stderr: SharedWriter = Arc::new(Mutex::new(stderr));
    let wasi = wasi_context(&opts, stdin, &stdout, &stderr, &interrupt)?;
    // One linear memory, and tables that together hold no more than that memory
    // limit: without these a module could declare more memories or grow a table
    // (outside linear memory) until the whole runtime is killed for lack of memory.
    let limits = StoreLimitsBuilder::new()
        .memory_size(opts.max_memory_bytes)
        .memories(1)
        .tables(MAX_TABLES)
        .table_elements(opts.max_memory_bytes / TABLE_ELEMENT_BYTES / MAX_TABLES)
        .build();
    let mut store = Store::new(&engine, HostState { wasi, limits });
    store.limiter(|state| &mut state.limits);
    set_fuel(&mut store, fuel_slice);

    let mut linker = Linker::<HostState>::new(&engine);
    wasmi_wasi::add_to_linker(&mut linker, |state: &mut HostState| &mut state.wasi).map_err(
        |err| WasmError::Wasi {
            file: file.clone(),
            reason: err.to_string(),
        },
    )?;
    let instance = linker
        .instantiate_and_start(&mut store, &module)
        .map_err(|err| WasmError::Instantiate {
            file: file.clone(),
            reason: err.to_string(),
        })?;
    let start = instance
        .get_typed_func::<(), ()>(&store, "_start")
        .map_err(|_| WasmError::MissingStart { file: file.clone() })?;
    let memory = instance.get_memory(&store, "memory");

    Ok(PreparedModule {
        store,
        start,
        memory,
        interrupt,
        outputs: vec![stdout, stderr],
        fuel_slice,
        slice: (fuel_slice / 100).max(MIN_FUEL_SLICE),
        max_fuel: opts.max_fuel,
        time_limit: opts.time_limit,
        cpu_at_start_ns,
    })
}

impl PreparedModule {
    /// Run `_start` until the program ends or must stop, updating `stats` between
    /// fuel slices. All output is written and flushed when this returns.
    pub fn run(mut self, stats: &ModuleStats) -> WasmExit {
        if let Some(limit) = self.time_limit {
            self.interrupt.set_deadline(Instant::now() + limit);
        }
        if let Some(why) = self.interrupt.check() {
            return self.interrupted(why);
        }
        let mut burnt: u64 = 0;
        let mut given = match self.next_slice(0, 0) {
            Some(fuel) => fuel,
            None => return WasmExit::FuelExhausted(self.max_fuel),
        };
        set_fuel(&mut self.store, given);
        self.record(stats, 0);

        let mut slice_started = Instant::now();
        let mut call = self.start.call_resumable(&mut self.store, ());
        let exit = loop {
            burnt += given.saturating_sub(self.store.get_fuel().unwrap_or(0));
            self.record(stats, burnt);
            match call {
                Ok(TypedResumableCall::Finished(())) => break WasmExit::Exited(0),
                Ok(TypedResumableCall::HostTrap(trap)) => break self.ended_by(trap.host_error()),
                Err(err) => break self.ended_by(&err),
                Ok(TypedResumableCall::OutOfFuel(out)) => {
                    if let Some(why) = self.interrupt.check() {
                        break self.interrupted(why);
                    }
                    self.adapt_slice(slice_started.elapsed());
                    given = match self.next_slice(burnt, out.required_fuel()) {
                        Some(fuel) => fuel,
                        None => break WasmExit::FuelExhausted(self.max_fuel),
                    };
                    set_fuel(&mut self.store, given);
                    slice_started = Instant::now();
                    call = out.resume(&mut self.store);
                }
            }
        };

        for output in &self.outputs {
            if let Ok(mut writer) = output.lock() {
                let _ = writer.flush();
            }
        }
        exit
    }

    /// Scale the slice so that one takes about `SLICE_TARGET` of wall time.
    fn adapt_slice(&mut self, took: Duration) {
        let took_ns = took.as_nanos().max(1);
        let target_ns = SLICE_TARGET.as_nanos();
        let scaled = u128::from(self.slice) * target_ns / took_ns;
        // Grow at most fourfold a step: a slice that ran short because the program
        // blocked in a host call says little about the speed of the machine.
        let bounded = scaled.min(u128::from(self.slice) * 4);
        self.slice = u64::try_from(bounded)
            .unwrap_or(u64::MAX)
            .clamp(MIN_FUEL_SLICE, self.fuel_slice);
    }

    /// Fuel for the next slice, or none when `max_fuel` is spent.
    fn next_slice(&self, burnt: u64, required: u64) -> Option<u64> {
        // `required` pays for the instruction alone; resuming may first run again what
        // precedes it in its block, so the slice comes on top.
        let wanted = self.slice.saturating_add(required);
        if self.max_fuel == 0 {
            return Some(wanted);
        }
        let left = self.max_fuel.saturating_sub(burnt);
        if left == 0 || left < required {
            return None;
        }
        Some(wanted.min(left))
    }

    fn record(&self, stats: &ModuleStats, burnt: u64) {
        let cpu = thread_cpu_time_ns().saturating_sub(self.cpu_at_start_ns);
        stats.cpu_time_ns.store(cpu, Ordering::Relaxed);
        stats.fuel_consumed.store(burnt, Ordering::Relaxed);
        if let Some(memory) = self.memory {
            let bytes = memory.data_size(&self.store) as u64;
            stats.mem_bytes.store(bytes, Ordering::Relaxed);
        }
    }

    /// An error out of `_start`: `proc_exit`, an interruption seen by a host call, or
    /// a trap.
    fn ended_by(&self, err: &wasmi::Error) -> WasmExit {
        if let Some(code) = err.i32_exit_status() {
            return WasmExit::Exited(code);
        }
        if let Some(why) = self.interrupt.check() {
            return self.interrupted(why);
        }
        WasmExit::Trap(err.to_string())
    }

    fn interrupted(&self, why: Interruption) -> WasmExit {
        match why {
            Interruption::Stopped => WasmExit::Stopped,
            Interruption::TimeLimit => WasmExit::TimeLimit(self.time_limit.unwrap_or_default()),
        }
    }
}

fn set_fuel(store: &mut Store<HostState>, fuel: u64) {
    // Only fails when fuel metering is off, and `prepare` always turns it on.
    if let Err(err) = store.set_fuel(fuel) {
        log::error!("cannot set module fuel: {err}");
    }
}

fn wasi_context(
    opts: &WasmRunOptions,
    stdin: Receiver<Vec<u8>>,
    stdout: &SharedWriter,
    stderr: &SharedWriter,
    interrupt: &Arc<Interrupt>,
) -> Result<WasiCtx, WasmError> {
    let wasi_error = |reason: String| WasmError::Wasi {
        file: opts.program_name.clone(),
        reason,
    };
    let mut wasi = WasiCtx::new(
        wasmi_wasi::sync::random_ctx(),
        wasmi_wasi::sync::clocks_ctx(),
        Box::new(InterruptibleSched::new(interrupt.clone())),
        Table::new(),
    );

    for arg in std::iter::once(&opts.program_name).chain(&opts.args) {
        wasi.push_arg(arg)
            .map_err(|err| wasi_error(format!("argument '{arg}': {err}")))?;
    }
    for (key, value) in &opts.env {
        wasi.push_env(key, value)
            .map_err(|err| wasi_error(format!("environment variable '{key}': {err}")))?;
    }

    wasi.set_stdin(Box::new(ChannelStdin::new(stdin, interrupt.clone())));
    wasi.set_stdout(Box::new(OutputFile::new(stdout.clone())));
    wasi.set_stderr(Box::new(OutputFile::new(stderr.clone())));

    for name in &opts.dirs {
        let host = preopen_folder(&opts.work_dir, name)?;
        let dir =
            Dir::open_ambient_dir(&host, ambient_authority()).map_err(|err| WasmError::Dir {
                dir: name.clone(),
                reason: err.to_string(),
            })?;
        let dir = Box::new(wasmi_wasi::sync::dir::Dir::from_cap_std(dir));
        wasi.push_preopened_dir(dir, name)
            .map_err(|err| wasi_error(format!("folder '{name}': {err}")))?;
    }
    Ok(wasi)
}

/// Creates the folder `name` inside `work_dir` and returns its host path; refuses
/// anything but plain relative names.
fn preopen_folder(work_dir: &Path, name: &str) -> Result<PathBuf, WasmError> {
    let plain = !name.is_empty()
        && !name.contains('\\')
        && !name.contains('\0')
        && Path::new(name)
            .components()
            .all(|part| matches!(part, Component::Normal(_)));
    if !plain {
        return Err(WasmError::UnsafeDir(name.to_string()));
    }
    let host = work_dir.join(name);
    fs::create_dir_all(&host).map_err(|err| WasmError::Dir {
        dir: name.to_string(),
        reason: err.to_string(),
    })?;
    Ok(host)
}
