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
}

impl Launcher for ScriptedLauncher {
    fn launch(&self, context: LaunchContext) -> std::io::Result<std::thread::JoinHandle<()>> {
        self.launched.lock().expect("lock").push(context);
        std::thread::Builder::new().spawn(|| {})
    }

    fn stop(&self, uuid: &str) {
        self.stopped.lock().expect("lock").push(uuid.to_string());
    }
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
    let runtime = RuntimeInfo {
        uuid: "rt-uuid".into(),
        name: "rt".into(),
        namespace: "public".into(),
        realm: "realm".into(),
        runtime_type: "runtime".into(),
        max_nmodules: 4,
        apis: vec![],
    };
    let protocol = Protocol::new(DialectConfig::default(), runtime, 65536);
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
/// replies, `("<uuid>", "exited")` for exit notices.
fn published(published: &mut OutboxReceiver) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    while let Some(item) = published.take(true) {
        let message: Value = serde_json::from_slice(&item.message.payload).expect("json");
        let data = &message["data"];
        if message["action"] == "exited" {
            seen.push((data["uuid"].as_str().unwrap().into(), "exited".into()));
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
fn a_failed_start_after_a_delete_answers_create_with_error_and_sends_no_exited() {
    let mut fx = fixture();
    fx.supervisor.create("c1".into(), request("m1"));
    fx.supervisor.delete("d1".into(), "m1");
    fx.supervisor.on_module_event(ModuleEvent::Failed {
        uuid: "m1".into(),
        error: "stopped".into(),
    });

    assert_eq!(
        published(&mut fx.published),
        [pair("c1", "error"), pair("d1", "ok")]
    );
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
