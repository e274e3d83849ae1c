//! Session tests against a real mosquitto started per test on a free loopback port.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

use super::*;
use crate::config::OutputSettings;
use crate::outbox::{outbox, Outbox, OutputEncoding};

const WAIT: Duration = Duration::from_secs(10);

struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        Broker::start_on(free_port())
    }

    fn start_on(port: u16) -> Broker {
        Broker::start_with(port, tempfile::tempdir().unwrap(), "")
    }

    /// A TLS listener with the certificates of `make_certificates` in `dir`.
    fn start_tls(dir: tempfile::TempDir) -> Broker {
        let files = dir.path().display().to_string();
        let tls = format!(
            "cafile {files}/ca.pem\ncertfile {files}/server.pem\nkeyfile {files}/server.key\n"
        );
        Broker::start_with(free_port(), dir, &tls)
    }

    fn start_with(port: u16, dir: tempfile::TempDir, extra: &str) -> Broker {
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n\
                 set_tcp_nodelay true\npersistence false\nlog_dest stderr\n{extra}"
            ),
        )
        .unwrap();
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto is installed");

        let (running_tx, running) = crossbeam_channel::bounded(1);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(" running") {
                    let _ = running_tx.try_send(());
                }
            }
        });
        running.recv_timeout(WAIT).expect("mosquitto starts");
        Broker {
            child,
            port,
            _dir: dir,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mosquitto_pub(port: u16, topic: &str, payload: &str, retain: bool) {
    let mut command = Command::new("mosquitto_pub");
    command.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"]);
    command.args(["-t", topic, "-m", payload]);
    if retain {
        command.arg("-r");
    }
    assert!(command.status().unwrap().success());
}

/// A second client that records what it receives on `filter`.
struct Watcher {
    _client: Client,
    messages: Receiver<(String, Vec<u8>)>,
}

impl Watcher {
    fn start(port: u16, filter: &str) -> Watcher {
        let id = format!("watcher-{}", uuid::Uuid::new_v4());
        let (client, mut connection) = Client::new(MqttOptions::new(id, "127.0.0.1", port), 16);
        client.subscribe(filter, QoS::AtLeastOnce).unwrap();
        let (tx, messages) = crossbeam_channel::unbounded();
        let (subscribed_tx, subscribed) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic, p.payload.to_vec()));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.try_send(());
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        subscribed.recv_timeout(WAIT).expect("watcher subscribed");
        Watcher {
            _client: client,
            messages,
        }
    }

    fn next(&self) -> (String, String) {
        let (topic, payload) = self.messages.recv_timeout(WAIT).expect("a message");
        (topic, String::from_utf8(payload).unwrap())
    }
}

/// A TCP relay between the session and the broker that can cut every connection
/// without a goodbye, as a network failure does.
struct Relay {
    port: u16,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(broker_port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let streams = Arc::new(Mutex::new(Vec::new()));
        let kept = streams.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(broker) = TcpStream::connect(("127.0.0.1", broker_port)) else {
                    continue;
                };
                let mut kept = kept.lock().unwrap();
                kept.push(client.try_clone().unwrap());
                kept.push(broker.try_clone().unwrap());
                copy_in_thread(client.try_clone().unwrap(), broker.try_clone().unwrap());
                copy_in_thread(broker, client);
            }
        });
        Relay { port, streams }
    }

    fn sever(&self) {
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn copy_in_thread(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}

fn settings(port: u16) -> MqttSettings {
    MqttSettings {
        host: "127.0.0.1".into(),
        port,
        keepalive_sec: 5,
        max_packet_bytes: 64 * 1024,
        reconnect_min_sec: 0.05,
        reconnect_max_sec: 0.2,
        ..MqttSettings::default()
    }
}

fn will() -> Message {
    Message {
        topic: "t/reg".into(),
        payload: b"runtime gone".to_vec(),
    }
}

fn start(settings: MqttSettings, subscriptions: &[&str]) -> (Session, Outbox, Receiver<MqttEvent>) {
    let (outbox, receiver) = outbox(OutputSettings::default(), OutputEncoding::Raw);
    let (events_tx, events): (Sender<MqttEvent>, _) = crossbeam_channel::unbounded();
    let options = SessionOptions {
        settings,
        client_id: format!("session-{}", uuid::Uuid::new_v4()),
        last_will: will(),
        subscriptions: subscriptions.iter().map(|s| s.to_string()).collect(),
    };
    let session = Session::start(options, receiver, events_tx).unwrap();
    (session, outbox, events)
}

fn await_event(events: &Receiver<MqttEvent>, wanted: impl Fn(&MqttEvent) -> bool) -> MqttEvent {
    let deadline = Instant::now() + WAIT;
    loop {
        let event = events.recv_deadline(deadline).expect("the awaited event");
        if wanted(&event) {
            return event;
        }
    }
}

fn connected(events: &Receiver<MqttEvent>) {
    await_event(events, |e| *e == MqttEvent::Connected);
}

fn message_on(events: &Receiver<MqttEvent>, topic: &str) -> String {
    match await_event(
        events,
        |e| matches!(e, MqttEvent::Message { topic: t, .. } if t == topic),
    ) {
        MqttEvent::Message { payload, .. } => String::from_utf8(payload).unwrap(),
        _ => unreachable!(),
    }
}

fn control(topic: &str, payload: &str) -> Message {
    Message {
        topic: topic.into(),
        payload: payload.as_bytes().to_vec(),
    }
}

#[test]
fn connected_is_reported_once_subscriptions_hold() {
    let broker = Broker::start();
    let (session, _outbox, events) = start(settings(broker.port), &["t/in/#"]);

    connected(&events);
    mosquitto_pub(broker.port, "t/in/ctl", "create", false);

    assert_eq!(message_on(&events, "t/in/ctl"), "create");
    session.shutdown(WAIT);
}

#[test]
fn control_messages_and_module_output_reach_subscribers() {
    let broker = Broker::start();
    let watcher = Watcher::start(broker.port, "t/out/#");
    let (session, outbox, events) = start(settings(broker.port), &[]);
    connected(&events);

    outbox.control(control("t/out/reg", "register"));
    let module = outbox.module_output("t/out/stdout".into(), "t/out/stderr".into());
    module.stdout().write_all(b"hello\n").unwrap();

    let mut received = vec![watcher.next(), watcher.next()];
    received.sort();
    assert_eq!(
        received,
        vec![
            ("t/out/reg".into(), "register".into()),
            ("t/out/stdout".into(), "hello\n".into())
        ]
    );
    session.shutdown(WAIT);
}

#[test]
fn subscriptions_are_restored_after_the_broker_restarts() {
    let mut broker = Broker::start();
    let port = broker.port;
    let (session, _outbox, events) = start(settings(port), &["t/in/#"]);
    connected(&events);

    broker.kill();
    await_event(&events, |e| matches!(e, MqttEvent::Disconnected { .. }));
    let _broker = Broker::start_on(port);
    connected(&events);
    mosquitto_pub(port, "t/in/ctl", "again", false);

    assert_eq!(message_on(&events, "t/in/ctl"), "again");
    session.shutdown(WAIT);
}

#[test]
fn a_filter_added_while_connected_is_subscribed_at_once() {
    let broker = Broker::start();
    mosquitto_pub(broker.port, "t/late", "retained", true);
    let (session, _outbox, events) = start(settings(broker.port), &["t/in"]);
    connected(&events);

    session.subscribe("t/late");

    assert_eq!(message_on(&events, "t/late"), "retained");
    session.shutdown(WAIT);
}

#[test]
fn last_will_is_published_when_the_connection_is_cut() {
    let broker = Broker::start();
    let relay = Relay::start(broker.port);
    let watcher = Watcher::start(broker.port, "t/reg");
    let (session, _outbox, events) = start(settings(relay.port), &[]);
    connected(&events);

    relay.sever();

    assert_eq!(watcher.next(), ("t/reg".into(), "runtime gone".into()));
    drop(session);
}

#[test]
fn shutdown_publishes_queued_control_messages_and_no_last_will() {
    let broker = Broker::start();
    let watcher = Watcher::start(broker.port, "t/#");
    let (session, outbox, events) = start(settings(broker.port), &[]);
    connected(&events);

    outbox.control(control("t/ctl", "unregister"));
    session.shutdown(WAIT);
    mosquitto_pub(broker.port, "t/marker", "after", false);

    assert_eq!(watcher.next(), ("t/ctl".into(), "unregister".into()));
    assert_eq!(watcher.next(), ("t/marker".into(), "after".into()));
}

#[test]
fn control_messages_queued_during_an_outage_arrive_after_reconnect() {
    let mut broker = Broker::start();
    let port = broker.port;
    let (session, outbox, events) = start(settings(port), &["t/in"]);
    connected(&events);

    broker.kill();
    await_event(&events, |e| matches!(e, MqttEvent::Disconnected { .. }));
    outbox.control(control("t/in", "queued while away"));
    let _broker = Broker::start_on(port);

    assert_eq!(message_on(&events, "t/in"), "queued while away");
    session.shutdown(WAIT);
}

#[test]
fn shutdown_finishes_within_its_timeout_when_the_broker_is_gone() {
    let (session, outbox, events) = start(settings(free_port()), &["t/in"]);
    await_event(&events, |e| matches!(e, MqttEvent::Disconnected { .. }));
    outbox.control(control("t/ctl", "never delivered"));

    let started = Instant::now();
    session.shutdown(Duration::from_millis(500));

    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_oversized_publication_is_dropped_without_losing_the_connection() {
    let broker = Broker::start();
    let watcher = Watcher::start(broker.port, "t/out/#");
    let small = MqttSettings {
        max_packet_bytes: 1024,
        ..settings(broker.port)
    };
    let (session, outbox, events) = start(small, &[]);
    connected(&events);

    outbox.control(control("t/out/big", &"x".repeat(2000)));
    outbox.control(control("t/out/small", "fits"));

    assert_eq!(watcher.next(), ("t/out/small".into(), "fits".into()));
    assert!(events.try_iter().all(|e| e == MqttEvent::Connected));
    session.shutdown(WAIT);
}

#[test]
fn last_will_is_sent_at_qos_1_with_the_client_id_from_the_options() {
    let options = SessionOptions {
        settings: settings(1883),
        client_id: "runtime-1".into(),
        last_will: will(),
        subscriptions: vec![],
    };

    let mqtt = mqtt_options(&options).unwrap();

    let last_will = mqtt.last_will().unwrap();
    assert_eq!(mqtt.client_id(), "runtime-1");
    assert_eq!(last_will.topic, "t/reg");
    assert_eq!(&last_will.message[..], b"runtime gone");
    assert_eq!(last_will.qos, QoS::AtLeastOnce);
    // What it accepts; what it sends is bounded by max_packet_bytes (64 KiB here).
    assert_eq!(mqtt.max_packet_size(), 16 * 1024 * 1024);
}

#[test]
fn invalid_subscription_filters_are_refused_at_start() {
    let (outbox_tx, receiver) = outbox(OutputSettings::default(), OutputEncoding::Raw);
    drop(outbox_tx);
    let options = SessionOptions {
        settings: settings(1883),
        client_id: "runtime-1".into(),
        last_will: will(),
        subscriptions: vec!["t/#/x".into()],
    };

    let result = Session::start(options, receiver, crossbeam_channel::unbounded().0);

    assert!(matches!(result, Err(MqttError::InvalidFilter(f)) if f == "t/#/x"));
}

#[test]
fn a_missing_ca_file_is_reported_with_its_path() {
    let tls = MqttSettings {
        ssl: true,
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..settings(8883)
    };

    let error = tls::client_config(&tls).unwrap_err();

    assert!(
        error.to_string().contains("'/nonexistent/ca.pem'"),
        "{error}"
    );
}

/// A CA (`ca.pem`) and a server certificate for `localhost` signed by it.
fn make_certificates() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
        ],
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    ];
    for args in steps {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success(), "openssl {args:?}");
    }
    dir
}

#[test]
fn tls_connection_trusts_the_ca_file() {
    let certificates = make_certificates();
    let ca_file = certificates.path().join("ca.pem");
    let broker = Broker::start_tls(certificates);
    let tls = MqttSettings {
        host: "localhost".into(),
        ssl: true,
        ca_file: Some(ca_file),
        ..settings(broker.port)
    };
    let (session, _outbox, events) = start(tls, &["t/in"]);

    connected(&events);
    session.shutdown(WAIT);
}

#[test]
fn tls_connection_refuses_a_certificate_from_an_unknown_ca() {
    let broker = Broker::start_tls(make_certificates());
    let other_ca = make_certificates();
    let tls = MqttSettings {
        host: "localhost".into(),
        ssl: true,
        ca_file: Some(other_ca.path().join("ca.pem")),
        ..settings(broker.port)
    };
    let (session, _outbox, events) = start(tls, &["t/in"]);

    let event = await_event(&events, |_| true);

    assert!(matches!(event, MqttEvent::Disconnected { reason } if reason.contains("certificate")));
    session.shutdown(Duration::from_secs(1));
}

#[test]
fn insecure_tls_accepts_any_certificate() {
    let broker = Broker::start_tls(make_certificates());
    let tls = MqttSettings {
        host: "localhost".into(),
        ssl: true,
        insecure: true,
        ..settings(broker.port)
    };
    let (session, _outbox, events) = start(tls, &["t/in"]);

    connected(&events);
    session.shutdown(WAIT);
}
