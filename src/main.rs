//! The `sideload` binary: command line, logging and wiring of the components.
//! No logic lives here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use log::{error, info};

use sideload::config::{LauncherEntry, LauncherKind, Settings};
use sideload::launcher::docker::{ContainerLauncher, ContainerOptions};
use sideload::launcher::wasm::WasmLauncher;
use sideload::launcher::Launcher;
use sideload::mqtt::{Session, SessionOptions};
use sideload::outbox::{outbox, OutputEncoding};
use sideload::program_files::FetchLimits;
use sideload::protocol::{FileType, Protocol, RuntimeInfo};
use sideload::supervisor::{self, InactivitySettings, Parts, Supervisor, SupervisorSettings};

const USAGE: &str = "\
sideload: the Silverline edge runtime (WebAssembly and Python modules over MQTT)

usage: sideload [--config-dir DIR] [--check-config]

  --config-dir DIR   folder with settings.yaml, .appsettings.yaml, .secrets.yaml
                     (default: conf)
  --check-config     print the effective settings (secrets masked) and exit
  --version          print the version and exit
  --help             print this text and exit

Single keys can be overridden from the environment: SIDELOAD__MQTT__HOST=broker,
SIDELOAD__RUNTIME__NAME=pi7 (sections and keys joined by double underscores).";

struct Args {
    config_dir: PathBuf,
    check_config: bool,
}

enum Command {
    Run(Args),
    Exit(ExitCode),
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Exit(code)) => return code,
        Err(message) => {
            eprintln!("sideload: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let mut settings = match Settings::load(&args.config_dir) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("sideload: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_level_filter());
    for warning in &settings.warnings {
        log::warn!("{warning}");
    }
    if args.check_config {
        // A check writes nothing: the uuid is shown only when one is kept already.
        if let Err(err) = settings.peek_runtime_uuid() {
            error!("{err}");
            return ExitCode::from(2);
        }
        print!("{}", settings.masked_yaml());
        return ExitCode::SUCCESS;
    }
    if let Err(err) = settings.resolve_runtime_uuid() {
        error!("{err}");
        return ExitCode::from(2);
    }

    match run(settings) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            error!("{message}");
            ExitCode::from(1)
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut parsed = Args {
        config_dir: PathBuf::from("conf"),
        check_config: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config-dir" | "-c" => {
                let dir = args.next().ok_or("'--config-dir' needs a folder")?;
                parsed.config_dir = PathBuf::from(dir);
            }
            "--check-config" => parsed.check_config = true,
            "--version" | "-V" => {
                println!("sideload {}", env!("CARGO_PKG_VERSION"));
                return Ok(Command::Exit(ExitCode::SUCCESS));
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(Command::Exit(ExitCode::SUCCESS));
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(Command::Run(parsed))
}

fn init_logging(level: log::LevelFilter) {
    let config = simplelog::ConfigBuilder::new()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        .add_filter_allow_str("sideload")
        .build();
    // Logging to stderr works on every terminal and under systemd; failing to set it up
    // is not a reason to refuse to run.
    let _ = simplelog::TermLogger::init(
        level,
        config,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Never,
    );
}

fn run(settings: Settings) -> Result<u8, String> {
    let runtime_uuid = settings.runtime.uuid.clone().unwrap_or_default();
    info!(
        "sideload {} starting as '{}' ({runtime_uuid}), broker {}:{}",
        env!("CARGO_PKG_VERSION"),
        settings.runtime.name,
        settings.mqtt.host,
        settings.mqtt.port
    );

    let runtime = RuntimeInfo {
        uuid: runtime_uuid.clone(),
        name: settings.runtime.name.clone(),
        namespace: settings.runtime.namespace.clone(),
        realm: settings.runtime.realm.clone(),
        runtime_type: settings.runtime.runtime_type.clone(),
        max_nmodules: settings.runtime.max_nmodules,
        apis: settings.runtime.apis.clone(),
    };
    let protocol = Protocol::new(
        settings.dialect.clone(),
        runtime,
        settings.mqtt.max_request_bytes,
    )
    .with_metadata(host_metadata());

    let encoding = if settings.dialect.stdio_json {
        OutputEncoding::JsonString
    } else {
        OutputEncoding::Raw
    };
    let (outbox, outbox_rx) = outbox(settings.launcher.output.clone(), encoding);
    let (mqtt_tx, mqtt_events) = crossbeam_channel::unbounded();
    let session = Session::start(
        SessionOptions {
            settings: settings.mqtt.clone(),
            client_id: runtime_uuid,
            last_will: protocol.unregistration(),
            subscriptions: protocol.subscriptions(),
        },
        outbox_rx,
        mqtt_tx,
    )
    .map_err(|err| err.to_string())?;

    let signals = spawn_signal_listener()?;
    let work_root = settings.runtime.state_dir.join("modules");
    supervisor::prepare_work_root(&work_root)
        .map_err(|err| format!("cannot prepare '{}': {err}", work_root.display()))?;

    let launchers = build_launchers(&settings)?;

    let supervisor = Supervisor::new(Parts {
        settings: SupervisorSettings {
            runtime_name: settings.runtime.name.clone(),
            reg_attempts: settings.runtime.reg_attempts,
            reg_timeout: Duration::from_secs_f64(settings.runtime.reg_timeout_seconds),
            reg_fail_error: settings.runtime.reg_fail_error,
            max_nmodules: settings.runtime.max_nmodules,
            ka_interval: Duration::from_secs_f64(settings.runtime.ka_interval_sec),
            apis: settings.runtime.apis.clone(),
            pipe_stdout: settings.launcher.pipe_stdout,
            work_root,
            inactivity: InactivitySettings {
                timeout: Duration::from_secs_f64(settings.runtime.inactivity_timeout_sec),
                check_interval: Duration::from_secs_f64(
                    settings.runtime.inactivity_check_interval_sec,
                ),
                cpu_percent: settings.runtime.inactivity_cpu_percent,
                net_bytes_sec: settings.runtime.inactivity_net_bytes_sec,
                blk_bytes_sec: settings.runtime.inactivity_blk_bytes_sec,
            },
        },
        protocol,
        outbox,
        session,
        mqtt_events,
        signals,
        launchers,
    });
    let code = supervisor.run();
    Ok(u8::try_from(code).unwrap_or(1))
}

/// One launcher per filetype, as the launcher table says; a container launcher starts
/// sweeping containers left by a crashed run in the background.
fn build_launchers(settings: &Settings) -> Result<HashMap<FileType, Arc<dyn Launcher>>, String> {
    let mut launchers: HashMap<FileType, Arc<dyn Launcher>> = HashMap::new();
    for filetype in [FileType::Wasm, FileType::Python] {
        let entry = settings.launcher.entry(filetype);
        let launcher: Arc<dyn Launcher> = match entry.kind() {
            Some(LauncherKind::Wasm) => Arc::new(WasmLauncher::new(
                settings.launcher.wasm.clone(),
                settings.repository_base(),
                FetchLimits::from(&settings.repository),
            )),
            Some(LauncherKind::Container) => {
                let launcher = Arc::new(container_launcher(settings, entry)?);
                let sweeper = launcher.clone();
                std::thread::Builder::new()
                    .name("container-sweep".into())
                    .spawn(move || sweeper.sweep_orphans())
                    .map_err(|err| format!("cannot start the container sweep: {err}"))?;
                launcher
            }
            Some(LauncherKind::Disabled) | None => {
                info!("filetype '{}' is disabled", filetype.as_str());
                continue;
            }
        };
        launchers.insert(filetype, launcher);
    }
    Ok(launchers)
}

fn container_launcher(
    settings: &Settings,
    entry: &LauncherEntry,
) -> Result<ContainerLauncher, String> {
    let runtime = &settings.runtime;
    ContainerLauncher::new(ContainerOptions {
        settings: entry.docker.clone(),
        cmd: entry.cmd.clone(),
        runtime_uuid: runtime.uuid.clone().unwrap_or_default(),
        store: settings.repository_base(),
        fetch: FetchLimits::from(&settings.repository),
        mqtt_username: settings.mqtt.username.clone(),
        mqtt_password: settings.mqtt.password.clone(),
        stats_interval: Duration::from_secs_f64(settings.container_stats_interval_sec()),
    })
    .map_err(|err| format!("cannot start the container launcher: {err}"))
}

/// SIGINT and SIGTERM arrive on a channel the supervisor waits on.
fn spawn_signal_listener() -> Result<crossbeam_channel::Receiver<i32>, String> {
    use signal_hook::consts::{SIGINT, SIGTERM};

    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|err| format!("cannot install signal handlers: {err}"))?;
    let (tx, rx) = crossbeam_channel::bounded(4);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(signal).is_err() {
                    break;
                }
            }
        })
        .map_err(|err| format!("cannot start the signal thread: {err}"))?;
    Ok(rx)
}

/// What the registration says about the device (the orchestrator shows it).
fn host_metadata() -> serde_json::Map<String, serde_json::Value> {
    let mut metadata = serde_json::Map::new();
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        metadata.insert("host".into(), host.trim().into());
    }
    metadata.insert("arch".into(), std::env::consts::ARCH.into());
    metadata
}
