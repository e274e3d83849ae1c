//! Secrets as a user would check them: the runtime logs in to a broker that requires
//! a password from `.secrets.yaml`, and neither the password nor one embedded in the
//! program store url shows up in its log, in `--check-config`, or on any MQTT topic;
//! a wrong password is reported clearly while the runtime keeps retrying.
//!
//! Not for: config file merging in general (src/config/tests.rs) or reconnecting after
//! outages (reliability.rs).

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{with_programs, Broker, Fixture, Msg, Orchestrator, Runtime, RuntimeOptions, WAIT};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::json;

const USER: &str = "edge-device";
const PASSWORD: &str = "s3cr3t-pa55-XYZ";

fn secrets_yaml(username: &str, password: &str) -> String {
    format!("mqtt:\n  username: {username}\n  password: {password}\n")
}

/// A client subscribed to `#` that records every publication in full, to check what
/// went over the wire.
struct Tap {
    client: Client,
    seen: Arc<Mutex<Vec<Msg>>>,
    fence: String,
}

impl Tap {
    /// Connect (with credentials when given) and return once subscribed to `#`.
    fn connect(broker: &Broker, credentials: Option<(&str, &str)>) -> Tap {
        let id = format!("tap-{}", &common::new_uuid()[..8]);
        let mut options = MqttOptions::new(id.clone(), "127.0.0.1", broker.port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
        if let Some((username, password)) = credentials {
            options.set_credentials(username, password);
        }
        let (client, mut connection) = Client::new(options, 64);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (subscribed_tx, subscribed_rx) = crossbeam_channel::bounded(1);
        let (sink, subscriber) = (seen.clone(), client.clone());
        thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = subscriber.try_subscribe("#", QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.try_send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(mut seen) = sink.lock() {
                            seen.push(Msg {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        subscribed_rx
            .recv_timeout(WAIT)
            .expect("tap subscribed to '#'");
        Tap {
            client,
            seen,
            fence: format!("tap-fence/{id}"),
        }
    }

    /// Everything published so far: a marker of our own is published and awaited, so
    /// whatever the broker handled before it has been recorded.
    fn everything(&self) -> Vec<Msg> {
        let marker = common::new_uuid();
        self.client
            .publish(&self.fence, QoS::AtLeastOnce, false, marker.clone())
            .expect("tap publish");
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let seen = self.seen.lock().expect("tap records");
                if seen.iter().any(|m| m.payload == marker.as_bytes()) {
                    return seen.clone();
                }
            }
            assert!(Instant::now() < deadline, "tap did not see its own marker");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fail naming the topic if any publication contains `needle`; returns how many
    /// publications were checked.
    fn assert_nothing_contains(&self, needle: &str) -> usize {
        let everything = self.everything();
        for msg in &everything {
            assert!(
                !msg.topic.contains(needle) && !msg.text().contains(needle),
                "'{needle}' went over the wire on '{}': {}",
                msg.topic,
                msg.text()
            );
        }
        everything.len()
    }
}

/// Fail showing the lines if the runtime's log contains `needle`.
fn assert_log_lacks(rt: &Runtime, needle: &str) -> String {
    let log = rt.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(needle)).collect();
    assert!(
        lines.is_empty(),
        "'{needle}' appears in the runtime's log:\n{}",
        lines.join("\n")
    );
    log
}

#[test]
fn runtime_authenticates_with_the_secrets_file_and_never_logs_the_password() {
    let broker = Broker::start_with_auth(USER, PASSWORD);
    let tap = Tap::connect(&broker, Some((USER, PASSWORD)));
    let realm = common::unique_realm();
    let orch = Orchestrator::connect_as(&broker, &realm, USER, PASSWORD);
    let options = with_programs()
        .settings(json!({"loglevel": "DEBUG"}))
        .secrets(&secrets_yaml(USER, PASSWORD));
    let rt = Runtime::start(&broker, &realm, options);
    let mut fx = Fixture { rt, orch, broker };

    let req = fx.expect_registration(WAIT);
    fx.orch.register_reply_ok(&req);
    fx.assert_hello_still_works();

    fx.rt.terminate();
    fx.expect_unregistration(WAIT);
    let status = fx.rt.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "runtime did not exit 0 within 5 s of SIGTERM: {status:?}"
    );

    let log = assert_log_lacks(&fx.rt, PASSWORD);
    assert!(
        log.contains("DEBUG") || log.contains("debug"),
        "log is not at debug level, so the check proves little:\n{log}"
    );
    let checked = tap.assert_nothing_contains(PASSWORD);
    assert!(checked > 3, "tap saw only {checked} publications");
}

#[test]
fn check_config_masks_the_password() {
    let dir = tempfile::tempdir().expect("config dir");
    std::fs::write(
        dir.path().join("settings.yaml"),
        "loglevel: DEBUG\nruntime:\n  name: rt1\n  realm: realm\nmqtt:\n  host: 127.0.0.1\n  port: 1883\n",
    )
    .expect("write settings.yaml");
    std::fs::write(
        dir.path().join(".secrets.yaml"),
        secrets_yaml(USER, PASSWORD),
    )
    .expect("write .secrets.yaml");

    let out = Command::new(env!("CARGO_BIN_EXE_sideload"))
        .arg("--config-dir")
        .arg(dir.path())
        .arg("--check-config")
        .output()
        .expect("run sideload --check-config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    assert!(
        out.status.success(),
        "--check-config exited {}:\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(USER),
        "username not shown by --check-config:\n{stdout}"
    );
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "password shown by --check-config:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("password") && l.contains("****")),
        "password not shown as masked:\n{stdout}"
    );
}

#[test]
fn wrong_password_is_reported_clearly_and_the_runtime_keeps_retrying() {
    const WRONG: &str = "wr0ng-pa55-QQQ";
    let broker = Broker::start_with_auth(USER, PASSWORD);
    let realm = common::unique_realm();
    let options = RuntimeOptions::default()
        .secrets(&secrets_yaml(USER, WRONG))
        .appsettings("mqtt:\n  reconnect_min_sec: 0.1\n  reconnect_max_sec: 0.2\n");
    let mut rt = Runtime::start(&broker, &realm, options);

    // A warning or error naming the broker and saying the credentials were refused
    // (in whatever spelling: "not authorised", "NotAuthorized", "bad user name").
    let address = format!("127.0.0.1:{}", broker.port);
    let refusal = |line: &str| {
        let words: String = line
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect();
        line.contains(&address)
            && (line.contains("WARN") || line.contains("ERROR"))
            && ["notauthori", "badusername", "credentials", "password"]
                .iter()
                .any(|w| words.contains(w))
    };
    let log = rt.wait_for_log(
        "a warning that the broker refused the credentials",
        |log| log.lines().any(refusal),
        WAIT,
    );
    let report = log
        .lines()
        .find(|l| refusal(l))
        .unwrap_or_default()
        .to_string();
    assert!(!report.contains(WRONG), "the report shows the password");

    // Several more attempts, and the process still runs.
    let attempts = |log: &str| log.matches("mqtt connection attempt failed").count();
    rt.wait_for_log(
        "three more failed connection attempts",
        |log| attempts(log) >= 3,
        WAIT,
    );
    assert!(
        rt.is_running(),
        "runtime exited on bad credentials:\n{}",
        rt.log()
    );

    rt.terminate();
    let status = rt.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "runtime did not exit 0 within 5 s of SIGTERM: {status:?}"
    );
    assert_log_lacks(&rt, WRONG);
    assert_log_lacks(&rt, PASSWORD);
    eprintln!("broker refusal as logged: {report}");
}

#[test]
fn a_password_in_a_store_url_never_reaches_the_wire() {
    const STORE_PASSWORD: &str = "topsecret";
    let broker = Broker::start();
    let tap = Tap::connect(&broker, None);
    let realm = common::unique_realm();
    let orch = Orchestrator::connect(&broker, &realm);
    let options = RuntimeOptions::default().settings(json!({
        "repository": {"url": format!("http://user:{STORE_PASSWORD}@127.0.0.1:1/store")}
    }));
    let rt = Runtime::start(&broker, &realm, options);
    let mut fx = Fixture { rt, orch, broker };
    let req = fx.expect_registration(WAIT);
    fx.orch.register_reply_ok(&req);

    let m = fx.create("hello.wasm", json!({"argv": [], "env": []}));
    let err = fx.expect_error(WAIT);
    let text = err.to_string();
    assert!(
        !text.contains(STORE_PASSWORD),
        "the error shows the store password: {text}"
    );
    assert!(
        text.contains("hello.wasm") || text.contains(&m.uuid) || text.contains(&m.object_id),
        "the error does not say which create failed: {text}"
    );

    fx.rt.terminate();
    let status = fx.rt.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "runtime did not exit 0 within 5 s of SIGTERM: {status:?}"
    );
    assert_log_lacks(&fx.rt, STORE_PASSWORD);
    tap.assert_nothing_contains(STORE_PASSWORD);
    eprintln!("store error as published: {text}");
}
