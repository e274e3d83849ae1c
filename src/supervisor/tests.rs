//! Module life cycle of the supervisor against a scripted launcher: the test plays
//! the launcher's events and reads what the supervisor queues in a real outbox. The
//! session points at a closed port, so nothing leaves the process.

use std::net::TcpListener;
use std::sync::Mutex;

use serde_json::Value;

use super::*;
use crate::config::{MqttSettings, OutputSettings};
use crate::outbox::{outbox, OutboxReceiver, OutputEncoding};
use crate::protocol::{DialectConfig, RuntimeInfo};

/// Keeps every launch context (so stdin and events stay connected) and spawns a
/// thread that ends at once; the test sends the module's events itself.
#[derive(Default)]
struct ScriptedLauncher {
    launched: Mutex<Vec<LaunchContext>>,
    stopped: Mutex<Vec<String>>,
    keepalive_intervals: Mutex<Vec<Duration>>,
}

impl Launcher for ScriptedLauncher {
    fn launch(&self, context: LaunchContext) -> std::io::Result<std::thread::JoinHandle<()>> {
        self.launched.lock().expect("lock").push(context);
        std::thread::Builder::new().spawn(|| {})
    }

    fn stop(&self, uuid: &str) {
        self.stopped.lock().expect("lock").push(uuid.to_string());
    }

    fn keepalive_interval(&self, interval: Duration) {
        self.keepalive_intervals
            .lock()
            .expect("lock")
            .push(interval);
    }
}

#[test]
fn the_orchestrator_s_keepalive_interval_reaches_the_launchers() {
    let mut fx = fixture();
    fx.supervisor.on_reg_action(RegAction::Registered {
        ka_interval: Some(Duration::from_secs(7)),
    });
    assert_eq!(fx.supervisor.ka_interval, Duration::from_secs(7));
    assert_eq!(
        *fx.launcher.keepalive_intervals.lock().expect("lock"),
        [Duration::from_secs(7)]
    );
}

struct Fixture {
    supervisor: Supervisor,
    launcher: Arc<ScriptedLauncher>,
    published: OutboxReceiver,
    _work_root: tempfile::TempDir,
}

fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn fixture() -> Fixture {
    fixture_with(InactivitySettings::off(), DialectConfig::default())
}

fn fixture_with(inactivity: InactivitySettings, dialect: DialectConfig) -> Fixture {
    let runtime = RuntimeInfo {
        uuid: "rt-uuid".into(),
        name: "rt".into(),
        namespace: "public".into(),
        realm: "realm".into(),
        runtime_type: "runtime".into(),
        max_nmodules: 4,
        apis: vec![],
    };
    let protocol = Protocol::new(dialect, runtime, 65536);
    let (supervisor_outbox, published) = outbox(OutputSettings::default(), OutputEncoding::Raw);
    let (_, session_outbox) = outbox(OutputSettings::default(), OutputEncoding::Raw);
    let (mqtt_tx, mqtt_events) = crossbeam_channel::unbounded();
    let session = Session::start(
        crate::mqtt::SessionOptions {
            settings: MqttSettings {
                host: "127.0.0.1".into(),
                port: closed_port(),
                ..MqttSettings::default()
            },
            client_id: "rt-uuid".into(),
            last_will: protocol.unregistration(),
            subscriptions: protocol.subscriptions(),
        },
        session_outbox,
        mqtt_tx,
    )
    .expect("session");
    let launcher = Arc::new(ScriptedLauncher::default());
    let work_root = tempfile::tempdir().expect("tempdir");
    let (_, signals) = crossbeam_channel::unbounded();
    let supervisor = Supervisor::new(Parts {
        settings: SupervisorSettings {
            runtime_name: "rt".into(),
            reg_attempts: -1,
            reg_timeout: Duration::from_secs(5),
            reg_fail_error: false,
            max_nmodules: 4,
            ka_interval: Duration::from_secs(60),
            apis: vec![],
            pipe_stdout: true,
            work_root: work_root.path().join("modules"),
            inactivity,
        },
        protocol,
        outbox: supervisor_outbox,
        session,
        mqtt_events,
        signals,
        launchers: HashMap::from([(FileType::Wasm, launcher.clone() as Arc<dyn Launcher>)]),
    });
    Fixture {
        supervisor,
        launcher,
        published,
        _work_root: work_root,
    }
}

fn request(uuid: &str) -> ModuleRequest {
    ModuleRequest {
        uuid: uuid.into(),
        name: format!("name-{uuid}"),
        filetype: FileType::Wasm,
        file: "hello.wasm".into(),
        location: String::new(),
        argv: vec![],
        env: vec![],
        dirs: vec![],
        apis: vec![],
        limit_sec: None,
        namespace: "public".into(),
        scene: String::new(),
        sha256: Default::default(),
        raw: Value::Null,
    }
}

/// What the orchestrator would read, in order: `("<object_id>", "ok"|"error")` for
/// replies, `("<uuid>", "exited")` for exit notices, `("<uuid>", "delete notice")` for
/// the exit notices of the arena dialect.
fn published(published: &mut OutboxReceiver) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    while let Some(item) = published.take(true) {
        let message: Value = serde_json::from_slice(&item.message.payload).expect("json");
        let data = &message["data"];
        if message["action"] == "exited" {
            seen.push((data["uuid"].as_str().unwrap().into(), "exited".into()));
        } else if message["action"] == "delete" && data["result"].is_null() {
            let uuid = data["uuid"].as_str().unwrap();
            seen.push((uuid.into(), "delete notice".into()));
        } else if let Some(result) = data["result"].as_str() {
            let object_id = message["object_id"].as_str().unwrap();
            seen.push((object_id.into(), result.into()));
        }
    }
    seen
}

fn pair(id: &str, what: &str) -> (String, String) {
    (id.to_string(), what.to_string())
}

fn started(uuid: &str) -> ModuleEvent {
    ModuleEvent::Started { uuid: uuid.into() }
}

fn exited(uuid: &str) -> ModuleEvent {
    ModuleEvent::Exited {
        uuid: uuid.into(),
        code: Some(0),
        reason: "exited with code 0".into(),
    }
}

#[test]
fn a_second_delete_of_a_stopping_module_is_answered_when_it_exits() {
    let mut fx = fixture();
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.on_module_event(started("m1"));
    fx.supervisor.delete("d1".into(), "m1");
    fx.supervisor.delete("d2".into(), "m1");
    fx.supervisor.on_module_event(exited("m1"));

    assert_eq!(
        published(&mut fx.published),
        [
            pair("c1", "ok"),
            pair("d1", "ok"),
            pair("d2", "ok"),
            pair("m1", "exited")
        ]
    );
    assert_eq!(*fx.launcher.stopped.lock().unwrap(), ["m1"]);
}

#[test]
fn a_start_reported_after_a_delete_answers_the_create_ok_before_the_exit() {
    let mut fx = fixture();
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.delete("d1".into(), "m1");
    fx.supervisor.on_module_event(started("m1"));
    fx.supervisor.on_module_event(exited("m1"));

    assert_eq!(
        published(&mut fx.published),
        [pair("c1", "ok"), pair("d1", "ok"), pair("m1", "exited")]
    );
}

#[test]
fn a_failed_start_after_a_delete_answers_create_with_error_delete_with_ok_then_exited() {
    let mut fx = fixture();
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.delete("d1".into(), "m1");
    fx.supervisor.on_module_event(ModuleEvent::Failed {
        uuid: "m1".into(),
        error: "stopped".into(),
    });

    // The orchestrator waits for an exit after every delete it had answered.
    assert_eq!(
        published(&mut fx.published),
        [pair("c1", "error"), pair("d1", "ok"), pair("m1", "exited")]
    );
}

#[test]
fn a_failed_start_nobody_deleted_gets_only_the_create_error() {
    let mut fx = fixture();
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.on_module_event(ModuleEvent::Failed {
        uuid: "m1".into(),
        error: "image missing".into(),
    });

    assert_eq!(published(&mut fx.published), [pair("c1", "error")]);
}

#[test]
fn shutdown_answers_the_create_of_a_module_still_fetching_and_sends_no_exited() {
    let mut fx = fixture();
    fx.supervisor.create("c1".into(), request("slow"));
    fx.supervisor.create("c2".into(), request("runs"));
    fx.supervisor.on_module_event(started("runs"));
    let work_root = fx.supervisor.settings.work_root.clone();
    std::fs::create_dir_all(work_root.join("slow")).expect("work folder");

    let asked = Instant::now();
    fx.supervisor.shutdown();

    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let mut seen = published(&mut fx.published);
    seen.sort();
    assert_eq!(
        seen,
        [
            pair("c1", "error"),
            pair("c2", "ok"),
            pair("runs", "exited")
        ]
    );
    assert!(!work_root.exists(), "work folders left behind");
}

#[test]
fn stdin_for_a_module_whose_program_ended_is_dropped_without_an_error() {
    let mut fx = fixture();
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.on_module_event(started("m1"));
    fx.launcher.launched.lock().unwrap().clear();

    fx.supervisor.stdin("m1", b"late line\n".to_vec());

    assert_eq!(published(&mut fx.published), [pair("c1", "ok")]);
}

/// Times out after 2 s, checked every half second.
fn inactivity_on() -> InactivitySettings {
    InactivitySettings {
        timeout: Duration::from_secs(2),
        check_interval: Duration::from_millis(500),
        cpu_percent: 1.0,
        net_bytes_sec: 100.0,
        blk_bytes_sec: 1000.0,
    }
}

/// Instants of inactivity checks, half a second apart, the first one already due.
fn check_times() -> impl Iterator<Item = Instant> {
    let first = Instant::now() + Duration::from_secs(1);
    (0u32..).map(move |i| first + i * Duration::from_millis(500))
}

fn module_stats(fx: &Fixture, uuid: &str) -> Arc<ModuleStats> {
    let launched = fx.launcher.launched.lock().unwrap();
    let context = launched.iter().find(|c| c.request.uuid == uuid);
    context.expect("launched").stats.clone()
}

fn stopped(fx: &Fixture) -> Vec<String> {
    fx.launcher.stopped.lock().unwrap().clone()
}

#[test]
fn a_module_whose_counters_never_move_is_deleted_after_the_timeout_and_reported_exited() {
    let mut fx = fixture_with(inactivity_on(), DialectConfig::default());
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.on_module_event(started("m1"));
    let mut checks = check_times();

    // A baseline, then three quiet half seconds: 1.5 s idle.
    for now in checks.by_ref().take(4) {
        fx.supervisor.on_timer(now);
    }
    assert!(stopped(&fx).is_empty(), "deleted before the timeout");
    fx.supervisor.on_timer(checks.next().unwrap());
    assert_eq!(stopped(&fx), ["m1"]);

    fx.supervisor.on_module_event(exited("m1"));
    assert_eq!(
        published(&mut fx.published),
        [pair("c1", "ok"), pair("m1", "exited")]
    );
    assert!(fx.supervisor.registry.is_empty());
}

#[test]
fn a_module_whose_cpu_time_grows_is_not_deleted() {
    let mut fx = fixture_with(inactivity_on(), DialectConfig::default());
    fx.supervisor.create("c1".into(), request("busy"));
    fx.supervisor.on_module_event(started("busy"));
    let stats = module_stats(&fx, "busy");

    for now in check_times().take(20) {
        // 10% of one core over each half second.
        stats
            .cpu_time_ns
            .fetch_add(50_000_000, std::sync::atomic::Ordering::Relaxed);
        fx.supervisor.on_timer(now);
    }

    assert!(stopped(&fx).is_empty(), "busy module deleted");
    assert_eq!(published(&mut fx.published), [pair("c1", "ok")]);
}

#[test]
fn network_traffic_keeps_a_module_from_being_deleted() {
    let mut fx = fixture_with(inactivity_on(), DialectConfig::default());
    fx.supervisor.create("c1".into(), request("talks"));
    fx.supervisor.on_module_event(started("talks"));
    let stats = module_stats(&fx, "talks");

    for now in check_times().take(20) {
        // 200 bytes a second.
        stats
            .net_tx_bytes
            .fetch_add(100, std::sync::atomic::Ordering::Relaxed);
        fx.supervisor.on_timer(now);
    }

    assert!(stopped(&fx).is_empty(), "talking module deleted");
}

#[test]
fn an_idle_module_is_deleted_once_it_stops_working() {
    let mut fx = fixture_with(inactivity_on(), DialectConfig::default());
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.on_module_event(started("m1"));
    let stats = module_stats(&fx, "m1");
    let mut checks = check_times();

    // Idle 1.5 s, then busy for one interval: the idle time starts over.
    for now in checks.by_ref().take(4) {
        fx.supervisor.on_timer(now);
    }
    stats
        .cpu_time_ns
        .fetch_add(100_000_000, std::sync::atomic::Ordering::Relaxed);
    fx.supervisor.on_timer(checks.next().unwrap());
    for now in checks.by_ref().take(3) {
        fx.supervisor.on_timer(now);
    }
    assert!(stopped(&fx).is_empty(), "idle time not reset by activity");

    fx.supervisor.on_timer(checks.next().unwrap());
    assert_eq!(stopped(&fx), ["m1"]);
}

#[test]
fn a_module_still_starting_is_not_judged_idle() {
    let mut fx = fixture_with(inactivity_on(), DialectConfig::default());
    fx.supervisor.create("c1".into(), request("slow"));

    for now in check_times().take(20) {
        fx.supervisor.on_timer(now);
    }

    assert!(stopped(&fx).is_empty(), "module deleted before it started");
}

#[test]
fn with_the_timeout_off_no_check_is_scheduled_and_no_module_is_deleted() {
    let mut fx = fixture();
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.on_module_event(started("m1"));

    assert!(fx.supervisor.next_inactivity_check.is_none());
    for now in check_times().take(20) {
        fx.supervisor.on_timer(now);
    }
    assert!(stopped(&fx).is_empty());
}

#[test]
fn an_idle_deletion_is_announced_by_the_arena_dialect_as_an_exit_nobody_asked_for() {
    let arena = DialectConfig {
        exit_notice: "delete".into(),
        ..DialectConfig::default()
    };
    let mut fx = fixture_with(inactivity_on(), arena);
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.on_module_event(started("m1"));

    for now in check_times().take(5) {
        fx.supervisor.on_timer(now);
    }
    assert_eq!(stopped(&fx), ["m1"]);
    fx.supervisor.on_module_event(exited("m1"));

    assert_eq!(
        published(&mut fx.published),
        [pair("c1", "ok"), pair("m1", "delete notice")]
    );
}

#[test]
fn a_delete_request_during_an_idle_deletion_is_answered_and_the_exit_reported_once() {
    let mut fx = fixture_with(inactivity_on(), DialectConfig::default());
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.on_module_event(started("m1"));
    for now in check_times().take(5) {
        fx.supervisor.on_timer(now);
    }

    fx.supervisor.delete("d1".into(), "m1");
    fx.supervisor.on_module_event(exited("m1"));

    assert_eq!(stopped(&fx), ["m1"], "stopped twice");
    assert_eq!(
        published(&mut fx.published),
        [pair("c1", "ok"), pair("d1", "ok"), pair("m1", "exited")]
    );
}

#[test]
fn with_the_timeout_on_the_supervisor_wakes_up_for_the_next_check() {
    let fx = fixture_with(inactivity_on(), DialectConfig::default());

    let wake_up = fx.supervisor.next_deadline();

    assert!(
        wake_up <= Instant::now() + Duration::from_millis(500),
        "next wake-up in {:?}",
        wake_up.saturating_duration_since(Instant::now())
    );
}
