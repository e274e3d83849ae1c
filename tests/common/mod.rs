//! Harness for integration tests: a real mosquitto on a free loopback port, the real
//! `sideload` binary with a temporary config folder and program store, and an
//! `Orchestrator` MQTT client that plays the Silverline orchestrator and checks what
//! goes over the wire.
//!
//! Not for: unit tests of runtime internals, or anything that needs the runtime's
//! library API (the tests talk to the binary only through MQTT, files and signals).

#![allow(dead_code)]

pub mod engine;
pub mod programs;

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rumqttc::{Client, Event, MqttOptions, NetworkOptions, Packet, QoS};
use serde_json::{json, Value};
use tempfile::TempDir;

/// Default wait for an event that should come promptly.
pub const WAIT: Duration = Duration::from_secs(10);

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Waits until mosquitto accepts connections; `Err` with its log when it exited.
fn wait_for_port(
    port: u16,
    child: &mut Child,
    log: &Path,
    deadline: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "mosquitto exited with {status} before accepting connections:\n{}",
                read_lossy(log)
            ));
        }
        if start.elapsed() > deadline {
            panic!(
                "mosquitto did not accept connections on port {port} within {deadline:?}:\n{}",
                read_lossy(log)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------------------------
// Broker

/// A mosquitto process on a loopback port, killed on drop.
pub struct Broker {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
    /// Username and password every client must give (`start_with_auth`); `None` lets
    /// anonymous clients in.
    auth: Option<(String, String)>,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_on_a_free_port(None)
    }

    /// A broker that refuses anonymous clients and accepts only `username`/`password`.
    pub fn start_with_auth(username: &str, password: &str) -> Broker {
        Broker::start_on_a_free_port(Some((username.into(), password.into())))
    }

    /// A port that was free can be taken before mosquitto binds it (as the local end
    /// of another test's connection): then another port is tried.
    fn start_on_a_free_port(auth: Option<(String, String)>) -> Broker {
        let mut broker = Broker {
            port: free_port(),
            dir: tempfile::tempdir().expect("broker temp dir"),
            child: None,
            auth,
        };
        for _ in 0..4 {
            match broker.try_spawn() {
                Ok(()) => return broker,
                Err(log) if log.contains("Address already in use") => {
                    broker.port = free_port();
                }
                Err(log) => panic!("{log}"),
            }
        }
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("{log}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let conf = self.dir.path().join("mosquitto.conf");
        let log = self.dir.path().join("mosquitto.log");
        let mut text = format!(
            "listener {} 127.0.0.1\nset_tcp_nodelay true\npersistence false\n\
             log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n",
            self.port
        );
        match &self.auth {
            None => text.push_str("allow_anonymous true\n"),
            Some((username, password)) => {
                let file = self.dir.path().join("passwords");
                let status = Command::new("mosquitto_passwd")
                    .arg("-b")
                    .arg("-c")
                    .arg(&file)
                    .arg(username)
                    .arg(password)
                    .status()
                    .expect("run mosquitto_passwd (is it installed?)");
                assert!(status.success(), "mosquitto_passwd failed: {status}");
                // Owner-only, so mosquitto (running as this user) does not warn.
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&file, fs::Permissions::from_mode(0o600))
                    .expect("chmod the password file");
                text.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.to_string_lossy()
                ));
            }
        }
        if unsafe { libc::geteuid() } == 0 {
            text.push_str("user root\n");
        }
        fs::write(&conf, text).expect("write mosquitto.conf");

        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("mosquitto log");
        let err = out.try_clone().expect("clone log handle");
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn mosquitto (is it installed?)");
        wait_for_port(self.port, &mut child, &log, Duration::from_secs(10))?;
        self.child = Some(child);
        Ok(())
    }

    /// A broker with a reserved port that is not running yet (`launch` starts it), for
    /// a runtime that starts before its broker.
    pub fn unstarted() -> Broker {
        Broker {
            port: free_port(),
            dir: tempfile::tempdir().expect("broker temp dir"),
            child: None,
            auth: None,
        }
    }

    /// Start the broker if it is not running; returns once it accepts connections.
    pub fn launch(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop and start again on the same port (no persistence: sessions are lost).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("mosquitto.log"))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------
// Runtime

/// How to start a runtime under test. `settings` is merged over the base settings the
/// harness writes (broker address, realm, uuid, store, state folder).
pub struct RuntimeOptions {
    pub settings: Value,
    pub env: Vec<(String, String)>,
    pub programs: Vec<(String, Vec<u8>)>,
    /// Written as `.appsettings.yaml` (e.g. a dialect block) when given.
    pub extra_appsettings: Option<String>,
    /// Written as `.secrets.yaml` (above `settings.yaml`) when given.
    pub secrets: Option<String>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            settings: json!({}),
            env: Vec::new(),
            programs: Vec::new(),
            extra_appsettings: None,
            secrets: None,
        }
    }
}

impl RuntimeOptions {
    /// Merge `patch` over the settings (objects merge, everything else replaces).
    pub fn settings(mut self, patch: Value) -> Self {
        merge(&mut self.settings, patch);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Write `yaml` as the runtime's `.appsettings.yaml` (below `settings.yaml`).
    pub fn appsettings(mut self, yaml: &str) -> Self {
        self.extra_appsettings = Some(yaml.into());
        self
    }

    /// Write `yaml` as the runtime's `.secrets.yaml` (above `settings.yaml`).
    pub fn secrets(mut self, yaml: &str) -> Self {
        self.secrets = Some(yaml.into());
        self
    }

    /// Put a program into the store under `name` (a path relative to the store).
    pub fn program(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.programs.push((name.into(), bytes));
        self
    }
}

pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

/// Topics of one runtime in the silverline dialect.
#[derive(Clone, Debug)]
pub struct Topics {
    pub realm: String,
    pub uuid: String,
}

impl Topics {
    pub fn reg(&self) -> String {
        format!("{}/proc/reg/{}", self.realm, self.uuid)
    }
    pub fn control(&self) -> String {
        format!("{}/proc/control/{}", self.realm, self.uuid)
    }
    pub fn keepalive(&self) -> String {
        format!("{}/proc/keepalive/{}", self.realm, self.uuid)
    }
    pub fn log(&self) -> String {
        format!("{}/proc/log/{}", self.realm, self.uuid)
    }
    pub fn stdout(&self, module: &str) -> String {
        format!("{}/proc/stdio/{}", self.realm, module)
    }
    pub fn stderr(&self, module: &str) -> String {
        format!("{}/proc/stdio/{}/stderr", self.realm, module)
    }
    pub fn stdin(&self, module: &str) -> String {
        format!("{}/proc/stdio/{}/stdin", self.realm, module)
    }
}

/// The `sideload` binary under test. Killed on drop; its output is printed when the
/// test is failing.
pub struct Runtime {
    pub uuid: String,
    pub name: String,
    pub realm: String,
    pub topics: Topics,
    pub store: PathBuf,
    pub state_dir: PathBuf,
    pub config_dir: PathBuf,
    log: PathBuf,
    dir: TempDir,
    child: Option<Child>,
    status: Option<ExitStatus>,
}

impl Runtime {
    pub fn start(broker: &Broker, realm: &str, options: RuntimeOptions) -> Runtime {
        let dir = tempfile::tempdir().expect("runtime temp dir");
        let config_dir = dir.path().join("conf");
        let store = dir.path().join("store");
        let state_dir = dir.path().join("state");
        fs::create_dir_all(&config_dir).expect("config dir");
        fs::create_dir_all(&store).expect("store dir");

        for (name, bytes) in &options.programs {
            let path = store.join(name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).expect("program folder");
            }
            fs::write(&path, bytes).expect("write program");
        }

        // A test may fix the uuid (a restart of "the same" runtime).
        let uuid = options.settings["runtime"]["uuid"]
            .as_str()
            .map_or_else(new_uuid, str::to_string);
        let name = format!("rt-{}", short_id());
        let mut settings = json!({
            "loglevel": "DEBUG",
            "runtime": {
                "name": name,
                "uuid": uuid,
                "realm": realm,
                "reg_attempts": 0,
                "reg_timeout_seconds": 1,
                "max_nmodules": 10,
                "ka_interval_sec": 60,
                "state_dir": state_dir.to_string_lossy(),
            },
            "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "repository": {"url": format!("file://{}", store.to_string_lossy())},
        });
        merge(&mut settings, options.settings);
        let yaml = serde_yaml::to_string(&settings).expect("settings as yaml");
        fs::write(config_dir.join("settings.yaml"), yaml).expect("write settings.yaml");
        if let Some(appsettings) = &options.extra_appsettings {
            fs::write(config_dir.join(".appsettings.yaml"), appsettings)
                .expect("write .appsettings.yaml");
        }
        if let Some(secrets) = &options.secrets {
            fs::write(config_dir.join(".secrets.yaml"), secrets).expect("write .secrets.yaml");
        }

        let log = dir.path().join("sideload.log");
        let out = fs::File::create(&log).expect("runtime log");
        let err = out.try_clone().expect("clone log handle");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sideload"));
        command
            .arg("--config-dir")
            .arg(&config_dir)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (key, value) in &options.env {
            command.env(key, value);
        }
        // A process group of its own, as a shell gives a command: `interrupt_group`
        // is a Ctrl-C on its terminal.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("spawn sideload");

        Runtime {
            topics: Topics {
                realm: realm.into(),
                uuid: uuid.clone(),
            },
            uuid,
            name,
            realm: realm.into(),
            store,
            state_dir,
            config_dir,
            log,
            dir,
            child: Some(child),
            status: None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// The log once `pred` holds for it, polling the log file until `timeout`.
    pub fn wait_for_log(
        &self,
        what: &str,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if pred(&log) {
                return log;
            }
            if Instant::now() > deadline {
                panic!("expected {what} in the runtime's log within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            self.status = child.wait().ok();
        }
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        if let Some(pid) = self.pid() {
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// SIGINT to the runtime's process group, as a Ctrl-C on its terminal sends it.
    pub fn interrupt_group(&self) {
        if let Some(pid) = self.pid() {
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGINT);
            }
        }
    }

    /// The exit status, if the process ends within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let child = self.child.as_mut()?;
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    return self.status;
                }
                Ok(None) if start.elapsed() < timeout => thread::sleep(Duration::from_millis(20)),
                _ => return None,
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.wait_exit(Duration::ZERO).is_none()
    }

    /// Entries left in `state_dir/modules`, after giving cleanup up to `grace`.
    pub fn leftover_module_files(&self, grace: Duration) -> Vec<PathBuf> {
        let dir = self.state_dir.join("modules");
        let start = Instant::now();
        loop {
            let entries: Vec<PathBuf> = match fs::read_dir(&dir) {
                Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
                Err(_) => Vec::new(),
            };
            if entries.is_empty() || start.elapsed() > grace {
                return entries;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "===== sideload output ({:?}) =====\n{}\n===== end of sideload output =====",
                self.status,
                self.log()
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Orchestrator

/// One publication seen by the orchestrator.
#[derive(Clone, Debug)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
}

impl Msg {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.payload).ok()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

enum Incoming {
    Msg(Msg),
    SubAck,
}

/// A test MQTT client standing in for the orchestrator; subscribed to `{realm}/#`.
/// Messages that an `expect` does not match stay in a backlog for later `expect`s, so
/// tests do not depend on the order of messages across topics.
pub struct Orchestrator {
    pub realm: String,
    /// Keepalive period given in registration replies (the runtime adopts it).
    pub ka_interval_sec: f64,
    client: Client,
    rx: Receiver<Incoming>,
    backlog: VecDeque<Msg>,
    history: Vec<String>,
    /// Payloads this client published, to tell its own echoes from the runtime's.
    sent: Mutex<HashSet<Vec<u8>>>,
    /// Payloads on control topics that are not JSON objects and were not sent by us.
    bad_control: Vec<Msg>,
}

impl Orchestrator {
    /// Connect and return once the `{realm}/#` subscription is confirmed.
    pub fn connect(broker: &Broker, realm: &str) -> Orchestrator {
        Orchestrator::connect_with(broker, realm, None)
    }

    /// `connect` giving `credentials` (username, password) to the broker.
    pub fn connect_as(
        broker: &Broker,
        realm: &str,
        username: &str,
        password: &str,
    ) -> Orchestrator {
        Orchestrator::connect_with(broker, realm, Some((username, password)))
    }

    fn connect_with(
        broker: &Broker,
        realm: &str,
        credentials: Option<(&str, &str)>,
    ) -> Orchestrator {
        let mut options =
            MqttOptions::new(format!("orch-{}", short_id()), "127.0.0.1", broker.port);
        if let Some((username, password)) = credentials {
            options.set_credentials(username, password);
        }
        options.set_keep_alive(Duration::from_secs(5));
        options.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
        let (client, mut connection) = Client::new(options, 256);
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        connection.eventloop.set_network_options(network);

        let (tx, rx) = crossbeam_channel::unbounded();
        let filter = format!("{realm}/#");
        let subscriber = client.clone();
        thread::spawn(move || drive(connection, subscriber, filter, tx));

        let mut orch = Orchestrator {
            realm: realm.into(),
            ka_interval_sec: 60.0,
            client,
            rx,
            backlog: VecDeque::new(),
            history: Vec::new(),
            sent: Mutex::new(HashSet::new()),
            bad_control: Vec::new(),
        };
        orch.wait_subscribed(WAIT);
        orch
    }

    /// Wait for the next subscription confirmation (after a broker restart).
    pub fn wait_subscribed(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(Incoming::SubAck) => return,
                Ok(Incoming::Msg(msg)) => self.keep(msg),
                Err(_) => panic!("orchestrator not subscribed within {timeout:?}"),
            }
        }
    }

    fn keep(&mut self, msg: Msg) {
        let mut text = msg.text();
        if text.len() > 600 {
            text.truncate(600);
            text.push_str("...");
        }
        self.history.push(format!("{} {}", msg.topic, text));
        let on_control = msg.topic.contains("/proc/control/");
        let is_object = matches!(msg.json(), Some(Value::Object(_)));
        let ours = self
            .sent
            .lock()
            .map(|sent| sent.contains(&msg.payload))
            .unwrap_or(false);
        if on_control && !is_object && !ours {
            self.bad_control.push(msg.clone());
        }
        self.backlog.push_back(msg);
    }

    pub fn publish_raw(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        let payload = payload.into();
        if let Ok(mut sent) = self.sent.lock() {
            sent.insert(payload.clone());
        }
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .expect("orchestrator publish");
    }

    pub fn publish_json(&self, topic: &str, value: &Value) {
        self.publish_raw(topic, value.to_string());
    }

    /// Wait for a message satisfying `pred`, first among those already received.
    pub fn expect_msg(
        &mut self,
        what: &str,
        pred: impl Fn(&Msg) -> bool,
        timeout: Duration,
    ) -> Msg {
        match self.wait_for(&pred, timeout) {
            Some(msg) => msg,
            None => panic!(
                "expected {what} within {timeout:?}; messages seen:\n{}",
                self.history.join("\n")
            ),
        }
    }

    /// Whether a message satisfying `pred` has arrived and is still in the backlog
    /// (not taken by an `expect`); nothing is waited for.
    pub fn has_received(&self, pred: impl Fn(&Msg) -> bool) -> bool {
        self.backlog.iter().any(pred)
    }

    pub fn wait_for(&mut self, pred: &impl Fn(&Msg) -> bool, timeout: Duration) -> Option<Msg> {
        if let Some(i) = self.backlog.iter().position(pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(Incoming::Msg(msg)) => {
                    let hit = pred(&msg);
                    self.keep(msg);
                    if hit {
                        return self.backlog.pop_back();
                    }
                }
                Ok(Incoming::SubAck) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Wait for a JSON message on a topic satisfying `topic_pred` whose body satisfies
    /// `json_pred`; returns the body.
    pub fn expect(
        &mut self,
        what: &str,
        topic_pred: impl Fn(&str) -> bool,
        json_pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let msg = self.expect_msg(
            what,
            |m| topic_pred(&m.topic) && m.json().is_some_and(|v| json_pred(&v)),
            timeout,
        );
        msg.json().unwrap_or(Value::Null)
    }

    /// Assert that no matching message arrives within `within`.
    pub fn expect_none(
        &mut self,
        what: &str,
        topic_pred: impl Fn(&str) -> bool,
        json_pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) {
        let pred = |m: &Msg| topic_pred(&m.topic) && m.json().is_some_and(|v| json_pred(&v));
        if let Some(msg) = self.wait_for(&pred, within) {
            panic!(
                "did not expect {what}, got on '{}': {}\nmessages seen:\n{}",
                msg.topic,
                msg.text(),
                self.history.join("\n")
            );
        }
    }

    /// Collect raw payloads published on `topic` until their concatenation contains
    /// `needle`; returns the text collected. Output may come in any batching.
    pub fn expect_output(&mut self, topic: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut collected = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.wait_for(&|m: &Msg| m.topic == topic, left) {
                Some(msg) => {
                    collected.push_str(&msg.text());
                    if collected.contains(needle) {
                        return collected;
                    }
                }
                None => panic!(
                    "expected '{needle}' on '{topic}' within {timeout:?}, collected {collected:?}; \
                     messages seen:\n{}",
                    self.history.join("\n")
                ),
            }
        }
    }

    /// Fail if anyone but this client put an empty or non-JSON-object payload on a
    /// control topic (one such payload stops the orchestrator's MQTT handling).
    pub fn assert_control_topics_clean(&self) {
        let bad: Vec<String> = self
            .bad_control
            .iter()
            .map(|m| format!("'{}': {:?}", m.topic, m.text()))
            .collect();
        assert!(
            bad.is_empty(),
            "non-JSON payloads on control topics: {bad:?}"
        );
    }

    /// Everything received so far (topic and payload, truncated), oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Answer a registration request with `ok`.
    pub fn register_reply_ok(&self, req: &Value) {
        let data = &req["data"];
        let reply = json!({
            "object_id": req["object_id"],
            "type": "resp",
            "data": {
                "result": "ok",
                "details": {
                    "uuid": data["uuid"],
                    "name": data["name"],
                    "ka_interval_sec": self.ka_interval_sec,
                    "status": "A",
                }
            }
        });
        let topic = format!(
            "{}/proc/reg/{}",
            self.realm,
            data["uuid"].as_str().unwrap_or_default()
        );
        self.publish_json(&topic, &reply);
    }
}

fn drive(
    mut connection: rumqttc::Connection,
    client: Client,
    filter: String,
    tx: Sender<Incoming>,
) {
    for event in connection.iter() {
        let forwarded = match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                Ok(())
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => tx.send(Incoming::SubAck),
            Ok(Event::Incoming(Packet::Publish(p))) => tx.send(Incoming::Msg(Msg {
                topic: p.topic.clone(),
                payload: p.payload.to_vec(),
            })),
            Ok(_) => Ok(()),
            Err(_) => {
                // Broker gone (restart test); the next iteration reconnects.
                thread::sleep(Duration::from_millis(100));
                Ok(())
            }
        };
        if forwarded.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------
// Message shapes

pub fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn is_registration(v: &Value) -> bool {
    v["action"] == "create" && v["type"] == "req" && v["data"]["type"] == "runtime"
}

pub fn is_unregistration(v: &Value) -> bool {
    v["action"] == "delete" && v["type"] == "req" && v["data"]["type"] == "runtime"
}

/// A module create request in the silverline dialect.
pub fn create_request(
    object_id: &str,
    module_uuid: &str,
    name: &str,
    file: &str,
    args: Value,
) -> Value {
    json!({
        "object_id": object_id,
        "action": "create",
        "type": "req",
        "data": {
            "type": "module",
            "uuid": module_uuid,
            "name": name,
            "file": file,
            "apis": ["wasm", "wasi"],
            "args": args,
            "channels": [],
            "status": "A",
        }
    })
}

pub fn delete_request(object_id: &str, target: &str) -> Value {
    json!({
        "object_id": object_id,
        "action": "delete",
        "type": "req",
        "data": {"type": "module", "uuid": target}
    })
}

/// Best-effort exit code of an `exited` notice: the spec names no field, so look for a
/// number under a key mentioning "code" anywhere in `data`.
pub fn exit_code_of(notice: &Value) -> Option<i64> {
    fn find(v: &Value) -> Option<i64> {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k.contains("code") {
                        if let Some(n) = v.as_i64() {
                            return Some(n);
                        }
                    }
                }
                map.values().find_map(find)
            }
            _ => None,
        }
    }
    find(&notice["data"])
}

// ---------------------------------------------------------------------------------
// Fixture

/// A module the test created.
#[derive(Clone, Debug)]
pub struct Module {
    pub uuid: String,
    pub name: String,
    pub object_id: String,
}

/// Broker, orchestrator and a registered runtime. Dropped runtime first, so its output
/// is printed while the broker is still there.
pub struct Fixture {
    pub rt: Runtime,
    pub orch: Orchestrator,
    pub broker: Broker,
}

/// A realm of its own for each test.
pub fn unique_realm() -> String {
    format!("it{}", short_id())
}

/// Start broker, orchestrator and runtime, without answering the registration.
pub fn start_runtime(options: RuntimeOptions) -> Fixture {
    let broker = Broker::start();
    let realm = unique_realm();
    let orch = Orchestrator::connect(&broker, &realm);
    let rt = Runtime::start(&broker, &realm, options);
    Fixture { rt, orch, broker }
}

/// Start broker, orchestrator and runtime, answer the registration with `ok`, return.
pub fn start_registered_runtime(options: RuntimeOptions) -> Fixture {
    let ka_interval_sec = options.settings["runtime"]["ka_interval_sec"].as_f64();
    let mut fx = start_runtime(options);
    if let Some(ka) = ka_interval_sec {
        fx.orch.ka_interval_sec = ka;
    }
    let req = fx.expect_registration(WAIT);
    fx.orch.register_reply_ok(&req);
    fx
}

/// Options with the standard test programs in the store.
pub fn with_programs() -> RuntimeOptions {
    RuntimeOptions::default()
        .program("hello.wasm", programs::hello())
        .program("stderr.wasm", programs::stderr())
        .program("args_env.wasm", programs::args_env())
        .program("echo.wasm", programs::echo())
        .program("exit_code.wasm", programs::exit_code(3))
        .program("trap.wasm", programs::trap())
        .program("spin.wasm", programs::spin())
        .program("grow_memory.wasm", programs::grow_memory(100))
        .program("not_wasm.wasm", programs::not_wasm())
}

impl Fixture {
    pub fn expect_registration(&mut self, timeout: Duration) -> Value {
        let topic = self.rt.topics.reg();
        self.orch.expect(
            "a registration request",
            |t| t == topic,
            is_registration,
            timeout,
        )
    }

    /// Publish a create request for `file` with `args`; returns the module.
    pub fn create(&mut self, file: &str, args: Value) -> Module {
        let module = Module {
            uuid: new_uuid(),
            name: format!("mod-{}", short_id()),
            object_id: new_uuid(),
        };
        self.create_as(&module, file, args);
        module
    }

    pub fn create_as(&mut self, module: &Module, file: &str, args: Value) {
        let req = create_request(&module.object_id, &module.uuid, &module.name, file, args);
        self.send(&req);
    }

    /// Publish on the runtime's control topic.
    pub fn send(&self, req: &Value) {
        self.orch.publish_json(&self.rt.topics.control(), req);
    }

    pub fn send_raw(&self, payload: impl Into<Vec<u8>>) {
        self.orch.publish_raw(&self.rt.topics.control(), payload);
    }

    pub fn delete(&self, target: &str) -> String {
        let object_id = new_uuid();
        self.send(&delete_request(&object_id, target));
        object_id
    }

    /// The `ok` response to a request, on the control topic.
    pub fn expect_ok(&mut self, object_id: &str, timeout: Duration) -> Value {
        let topic = self.rt.topics.control();
        self.orch.expect(
            &format!("an ok response to '{object_id}'"),
            |t| t == topic,
            |v| v["object_id"] == object_id && v["type"] == "resp" && v["data"]["result"] == "ok",
            timeout,
        )
    }

    pub fn expect_exited(&mut self, module_uuid: &str, timeout: Duration) -> Value {
        let topic = self.rt.topics.control();
        self.orch.expect(
            &format!("an exited notice for module '{module_uuid}'"),
            |t| t == topic,
            |v| v["action"] == "exited" && v["data"]["uuid"] == module_uuid,
            timeout,
        )
    }

    /// The next error on the runtime's log topic, whatever its object_id.
    pub fn expect_error(&mut self, timeout: Duration) -> Value {
        let topic = self.rt.topics.log();
        let err = self.orch.expect(
            "an error on the log topic",
            |t| t == topic,
            |_| true,
            timeout,
        );
        assert_eq!(err["action"], "error", "error message shape: {err}");
        assert_eq!(err["type"], "resp", "error message shape: {err}");
        assert_eq!(err["data"]["result"], "error", "error message shape: {err}");
        assert!(
            err["data"]["details"]["desc"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "error without a desc: {err}"
        );
        err
    }

    pub fn expect_stdout(&mut self, module_uuid: &str, needle: &str, timeout: Duration) -> String {
        let topic = self.rt.topics.stdout(module_uuid);
        self.orch.expect_output(&topic, needle, timeout)
    }

    /// Run hello to the end: ok, its line on stdout, exited; then no module files left.
    pub fn assert_hello_still_works(&mut self) {
        assert!(self.rt.is_running(), "runtime is no longer running");
        let m = self.create("hello.wasm", json!({"argv": [], "env": []}));
        self.expect_ok(&m.object_id, WAIT);
        self.expect_stdout(&m.uuid, "hello world\n", WAIT);
        self.expect_exited(&m.uuid, WAIT);
        let left = self.rt.leftover_module_files(Duration::from_secs(2));
        assert!(left.is_empty(), "files left in state_dir/modules: {left:?}");
        self.orch.assert_control_topics_clean();
    }
}

impl Fixture {
    /// Re-send the same create every second until it is answered `ok` (for a runtime
    /// that gives no sign of being subscribed, as one that does not register).
    pub fn create_until_ok(&mut self, file: &str, args: Value, timeout: Duration) -> Module {
        let module = Module {
            uuid: new_uuid(),
            name: format!("mod-{}", short_id()),
            object_id: new_uuid(),
        };
        let deadline = Instant::now() + timeout;
        let topic = self.rt.topics.control();
        loop {
            self.create_as(&module, file, args.clone());
            let pred = |m: &Msg| {
                m.topic == topic
                    && m.json().is_some_and(|v| {
                        v["object_id"] == module.object_id.as_str()
                            && v["type"] == "resp"
                            && v["data"]["result"] == "ok"
                    })
            };
            if self.orch.wait_for(&pred, Duration::from_secs(1)).is_some() {
                return module;
            }
            if Instant::now() > deadline {
                panic!(
                    "no ok response to a create within {timeout:?}; messages seen:\n{}",
                    self.orch.history.join("\n")
                );
            }
        }
    }

    /// Fail if an `ok` response to `object_id` has been received so far.
    pub fn assert_no_ok_so_far(&mut self, object_id: &str) {
        let topic = self.rt.topics.control();
        self.orch.expect_none(
            &format!("an ok response to '{object_id}'"),
            |t| t == topic,
            |v| v["object_id"] == object_id && v["data"]["result"] == "ok",
            Duration::ZERO,
        );
    }

    /// Ask the runtime to shut down through its control topic.
    pub fn send_runtime_delete(&self) -> String {
        let object_id = new_uuid();
        self.send(&json!({
            "object_id": object_id,
            "action": "delete",
            "type": "req",
            "data": {"type": "runtime", "uuid": self.rt.uuid, "name": self.rt.name}
        }));
        object_id
    }

    pub fn expect_unregistration(&mut self, timeout: Duration) -> Value {
        let topic = self.rt.topics.reg();
        let uuid = self.rt.uuid.clone();
        self.orch.expect(
            "the unregistration",
            |t| t == topic,
            |v| is_unregistration(v) && v["data"]["uuid"] == uuid.as_str(),
            timeout,
        )
    }
}

/// Lower-cased `desc` and `data` of an error, for checks that it names the problem.
pub fn error_text(err: &Value) -> String {
    format!(
        "{} {}",
        str_of(err, "/data/details/desc"),
        err["data"]["details"]["data"]
    )
    .to_lowercase()
}

// ---------------------------------------------------------------------------------
// Gate

/// A TCP forwarder from a loopback port of its own to a broker port, standing in for a
/// flaky network link: `close` cuts every forwarded connection and refuses new ones
/// (they are accepted and closed at once) until `open`. A runtime pointed at the gate
/// can be kept off the broker while the orchestrator is connected directly.
pub struct Gate {
    pub port: u16,
    shared: std::sync::Arc<Mutex<GateState>>,
}

struct GateState {
    open: bool,
    stopped: bool,
    streams: Vec<TcpStream>,
}

impl Gate {
    /// Forward to `upstream` (a broker port); open from the start.
    pub fn start(upstream: u16) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate port");
        let port = listener.local_addr().expect("gate address").port();
        let shared = std::sync::Arc::new(Mutex::new(GateState {
            open: true,
            stopped: false,
            streams: Vec::new(),
        }));
        let state = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut state = state.lock().expect("gate state");
                if state.stopped {
                    return;
                }
                let upstream = if state.open {
                    TcpStream::connect(("127.0.0.1", upstream)).ok()
                } else {
                    None
                };
                let Some(upstream) = upstream else {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                for (from, to) in [(&stream, &upstream), (&upstream, &stream)] {
                    if let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) {
                        thread::spawn(move || forward(from, to));
                    }
                }
                state.streams.push(stream);
                state.streams.push(upstream);
            }
        });
        Gate { port, shared }
    }

    /// Cut every forwarded connection and refuse new ones.
    pub fn close(&self) {
        let mut state = self.shared.lock().expect("gate state");
        state.open = false;
        for stream in state.streams.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Forward new connections again.
    pub fn open(&self) {
        self.shared.lock().expect("gate state").open = true;
    }
}

fn forward(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.close();
        if let Ok(mut state) = self.shared.lock() {
            state.stopped = true;
        }
        // Wake the accept loop so it sees `stopped` and ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
