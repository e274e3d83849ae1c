//! Error paths of the container launcher, driven through the `Launcher` trait the way
//! the supervisor drives it, against a scripted fake engine: a shell script that keeps
//! each container's `inspect` state in a file beside it, answers in docker 28's
//! formats and appends every call to `calls.log`.
//!
//! Not for: command lines and parsing (`cli/tests.rs`) or the real engine
//! (`tests/python_modules.rs`, `tests/engine_faults.rs`, `tests/orphans.rs`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::*;
use crate::config::OutputSettings;
use crate::launcher::{ModuleEvent, StopFlag};
use crate::outbox::{self, OutboxReceiver, OutputEncoding};
use crate::protocol::{FileType, ModuleRequest};

/// The fake engine. `$d` is its folder; `c.NAME` holds a container's `{{json .State}}`,
/// `l.NAME` its labels, `env.NAME` the mode and lines of its `--env-file`; a file `down` makes every command fail as a stopped daemon
/// does; `on-start` is the shell snippet the attached start runs (with `$n` the
/// container); `pid` holds the host pid running containers report (else 0: no
/// kernel counters); a file `create-hold` makes `create` wait for `create-go`; files
/// `ps-fails` and `rm-fails` make only those commands fail.
const FAKE_ENGINE: &str = r#"#!/bin/sh
d=$(dirname "$0")
if [ -e "$d/down" ]; then
  echo "DOWN $*" >> "$d/calls.log"
  echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
  exit 1
fi
echo "$*" >> "$d/calls.log"

# set_state NAME STATUS [EXIT_CODE] [ERROR (JSON-escaped)]
set_state() {
  running=false; pid=0; started=2025-06-01T10:00:00.1Z; finished=0001-01-01T00:00:00Z
  case $2 in
    created) started=0001-01-01T00:00:00Z ;;
    running) running=true; pid=$(cat "$d/pid" 2>/dev/null || echo 0) ;;
    exited) finished=2025-06-01T10:00:01.2Z ;;
  esac
  printf '{"Status":"%s","Running":%s,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":%s,"ExitCode":%s,"Error":"%s","StartedAt":"%s","FinishedAt":"%s"}\n' \
    "$2" "$running" "$pid" "${3:-0}" "$4" "$started" "$finished" > "$d/c.$1.new"
  mv "$d/c.$1.new" "$d/c.$1"
}
is_running() { grep -q '"Running":true' "$d/c.$1" 2>/dev/null; }
# Exit as the container's state says (137: it was removed while running).
exit_as_state() {
  code=$(sed -n 's/.*"ExitCode":\([0-9]*\).*/\1/p' "$d/c.$1" 2>/dev/null)
  exit "${code:-137}"
}
no_such() { echo "Error response from daemon: No such container: $1" >&2; exit 1; }

cmd=$1; shift
case $cmd in
version) echo 28.1.1 ;;
create)
  name=; labels=; envfile=
  while [ $# -gt 0 ]; do
    case $1 in
      --name) name=$2; shift ;;
      --label) labels="$labels${labels:+,}$2"; shift ;;
      --env-file) envfile=$2; shift ;;
    esac
    shift
  done
  if [ -n "$envfile" ]; then
    { stat -c %a "$envfile"; cat "$envfile"; } > "$d/env.$name"
  fi
  if [ -e "$d/create-hold" ]; then
    while [ ! -e "$d/create-go" ]; do sleep 0.01; done
  fi
  if [ -e "$d/c.$name" ]; then
    echo "Error response from daemon: Conflict. The container name \"/$name\" is already in use by container \"id-$name\". You have to remove (or rename) that container to be able to reuse that name." >&2
    exit 125
  fi
  echo "$labels" > "$d/l.$name"
  set_state "$name" created
  echo "id-$name" ;;
start) # start --attach --interactive -- NAME
  n=$4
  [ -e "$d/c.$n" ] || no_such "$n"
  . "$d/on-start" ;;
inspect) # inspect --type container --format {{json .State}} -- NAME
  n=$6
  [ -e "$d/c.$n" ] || { echo; no_such "$n"; }
  cat "$d/c.$n" ;;
stop) # stop --time SECONDS -- NAME_OR_ID
  n=${4#id-}
  echo "Flag --time has been deprecated, use --timeout instead" >&2
  [ -e "$d/c.$n" ] || no_such "$n"
  if is_running "$n"; then set_state "$n" exited 143; fi
  echo "$n" ;;
rm) # rm --force --volumes -- NAME_OR_ID
  if [ -e "$d/rm-fails" ]; then
    echo "Error response from daemon: driver failed to remove root filesystem: device or resource busy" >&2
    exit 1
  fi
  n=${4#id-}
  [ -e "$d/c.$n" ] || no_such "$4"
  rm -f "$d/c.$n" "$d/l.$n"
  echo "$4" ;;
ps) # ps --all --no-trunc --filter label=KEY=VALUE --format {{json .}}
  if [ -e "$d/ps-fails" ]; then echo "Error response from daemon: context deadline exceeded" >&2; exit 1; fi
  want=${4#label=}
  for f in "$d"/l.*; do
    [ -e "$f" ] || continue
    n=${f##*/l.}
    labels=$(cat "$f")
    case ",$labels," in *",$want,"*) ;; *) continue ;; esac
    echo "{\"Command\":\"\\\"/entrypoint.sh prog.py\\\"\",\"ID\":\"id-$n\",\"Image\":\"runner\",\"Labels\":\"$labels\",\"Names\":\"$n\",\"State\":\"exited\",\"Status\":\"Exited (0) 2 minutes ago\"}"
  done ;;
stats) # stats --no-stream --format {{json .}} -- NAMES...
  shift 4
  if [ -e "$d/stats-eof-once" ]; then
    # What docker 28 says when a container goes during the call.
    rm -f "$d/stats-eof-once"
    echo "EOF" >&2
    exit 1
  fi
  for n in "$@"; do
    [ -e "$d/c.$n" ] || { echo "Error response from daemon: No such container: $n" >&2; bad=1; }
  done
  [ -z "$bad" ] || exit 1
  for n in "$@"; do
    echo "{\"BlockIO\":\"4kB / 8kB\",\"CPUPerc\":\"50.00%\",\"Container\":\"$n\",\"ID\":\"id-$n\",\"MemPerc\":\"0.98%\",\"MemUsage\":\"10MiB / 1GiB\",\"Name\":\"$n\",\"NetIO\":\"1.5kB / 2kB\",\"PIDs\":\"1\"}"
  done ;;
*) echo "docker: unknown command: docker $cmd" >&2; exit 125 ;;
esac
"#;

#[test]
fn a_stats_call_cut_short_by_a_container_going_is_asked_again() {
    let rig = Rig::new(on_start::RUN_UNTIL_STOPPED, NO_CHORES);
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());
    rig.fake.touch("stats-eof-once");

    let answers = rig
        .launcher
        .shared
        .engine
        .stats(&[module.container.clone()])
        .expect("stats");

    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].mem_bytes, 10 * 1024 * 1024);
    assert_eq!(rig.fake.calls_of("stats").len(), 2);
    module.delete(&rig.launcher);
    assert!(matches!(module.next_event(), ModuleEvent::Exited { .. }));
    module.join();
}

/// `on-start` snippets: what the attached start does in each story.
mod on_start {
    /// Runs, prints a line, and keeps running until stopped or removed.
    pub const RUN_UNTIL_STOPPED: &str = r#"set_state "$n" running
echo ready
while is_running "$n"; do sleep 0.02; done
exit_as_state "$n"
"#;

    /// Prints on both streams and exits with code 3.
    pub const EXIT_3: &str = r#"set_state "$n" running
echo out-1
echo err-1 >&2
echo out-2
echo err-2 >&2
set_state "$n" exited 3
exit 3
"#;

    /// Runs, prints a line and exits 0.
    pub const HELLO: &str = r#"set_state "$n" running
echo hello
set_state "$n" exited 0
exit 0
"#;

    /// The entrypoint is missing: the engine cannot start the process, says so on
    /// stderr and leaves the container `created` with the error in its state.
    pub const NO_ENTRYPOINT: &str = r#"set_state "$n" created 127 'failed to create task: exec: \"/entrypoint.sh\": no such file'
echo 'Error response from daemon: failed to create task: exec: "/entrypoint.sh": no such file' >&2
exit 127
"#;

    /// As `NO_ENTRYPOINT`, with an engine that leaves no error in the state.
    pub const NO_ENTRYPOINT_QUIET_STATE: &str = r#"echo 'Error response from daemon: failed to create task: exec: "/entrypoint.sh": no such file' >&2
exit 127
"#;

    /// Runs and prints a line; the attached start then never ends, whatever happens
    /// to the container (a hung engine command line), until the test creates
    /// `end-attach`.
    pub const ATTACH_HANGS: &str = r#"set_state "$n" running
echo ready
while [ ! -e "$d/end-attach" ]; do sleep 0.02; done
exit 0
"#;

    /// The container never starts and the attached start never ends, until the test
    /// creates `end-attach`.
    pub const START_HANGS: &str = r#"while [ ! -e "$d/end-attach" ]; do sleep 0.02; done
exit 1
"#;

    /// The container stays `created` and the attached start waits until the container
    /// is removed (or the test creates `end-attach`).
    pub const START_SLOW: &str = r#"while [ -e "$d/c.$n" ] && [ ! -e "$d/end-attach" ]; do sleep 0.02; done
exit 1
"#;

    /// Runs until the test creates `release`; then the daemon goes away, and the
    /// attached start ends as docker's does when it loses the daemon (125).
    pub const DAEMON_DIES: &str = r#"set_state "$n" running
echo working
while [ ! -e "$d/release" ]; do sleep 0.01; done
touch "$d/down"
echo "error waiting for container: unexpected EOF" >&2
exit 125
"#;
}

const RUNTIME_UUID: &str = "7d1c0f3e-1111-4222-8333-944455556666";
const WAIT: Duration = Duration::from_secs(5);

/// The fake engine's folder, with its script ready to run.
struct FakeEngine {
    dir: tempfile::TempDir,
}

impl FakeEngine {
    fn new(on_start: &str) -> FakeEngine {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("docker");
        fs::write(&script, FAKE_ENGINE).expect("write script");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::write(dir.path().join("on-start"), on_start).expect("write on-start");
        let fake = FakeEngine { dir };
        fake.wait_until_runnable();
        fs::remove_file(fake.path("calls.log")).expect("clear the call log");
        fake
    }

    /// A script just written cannot be run while another test's fork still holds it
    /// open for writing (ETXTBSY); once one run succeeded, none will fail so.
    fn wait_until_runnable(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            match std::process::Command::new(self.binary())
                .arg("version")
                .output()
            {
                Ok(output) => {
                    assert!(output.status.success(), "{output:?}");
                    return;
                }
                Err(err) if err.raw_os_error() == Some(libc::ETXTBSY) => {
                    assert!(Instant::now() < deadline, "fake engine stays busy");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(err) => panic!("cannot run the fake engine: {err}"),
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn binary(&self) -> String {
        self.path("docker").to_str().expect("utf-8").to_string()
    }

    fn touch(&self, name: &str) {
        fs::write(self.path(name), b"").expect("touch");
    }

    fn calls(&self) -> Vec<String> {
        match fs::read_to_string(self.path("calls.log")) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Calls of the engine's `subcommand` (ones made while it was down included, with
    /// their `DOWN ` prefix).
    fn calls_of(&self, subcommand: &str) -> Vec<String> {
        let prefix = format!("{subcommand} ");
        self.calls()
            .into_iter()
            .filter(|call| call.trim_start_matches("DOWN ").starts_with(&prefix))
            .collect()
    }

    /// Index in the call log of the first call that starts with `prefix`.
    fn first_call(&self, prefix: &str) -> Option<usize> {
        self.calls()
            .iter()
            .position(|call| call.starts_with(prefix))
    }

    /// The mode and lines of the env file `create` got for container `name`.
    fn env_file_of(&self, name: &str) -> String {
        fs::read_to_string(self.path(&format!("env.{name}"))).unwrap_or_default()
    }

    fn has_container(&self, name: &str) -> bool {
        self.path(&format!("c.{name}")).exists()
    }

    /// A container as a crashed run of `runtime` left it.
    fn leave_container(&self, name: &str, runtime: &str) {
        let state = r#"{"Status":"exited","Running":false,"Pid":0,"ExitCode":0,"Error":"","StartedAt":"2025-06-01T10:00:00.1Z","FinishedAt":"2025-06-01T10:00:01.2Z"}"#;
        fs::write(self.path(&format!("c.{name}")), state).expect("state");
        let labels = format!(
            "{}={runtime},{}=m-old",
            cli::LABEL_RUNTIME,
            cli::LABEL_MODULE
        );
        fs::write(self.path(&format!("l.{name}")), labels).expect("labels");
    }

    /// Polls `condition` until it holds, failing after a bounded wait.
    fn wait_for(&self, what: &str, condition: impl Fn(&FakeEngine) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !condition(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; calls: {:#?}",
                self.calls()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A launcher on a fake engine, with a program store holding `apps/prog.py` and a
/// state folder for work folders.
struct Rig {
    fake: FakeEngine,
    launcher: ContainerLauncher,
    _store: tempfile::TempDir,
    state: tempfile::TempDir,
    outbox: OutboxReceiver,
    outbox_tx: outbox::Outbox,
    /// Module output taken from the outbox so far: `(topic, text)`.
    seen: Vec<(String, String)>,
}

impl Rig {
    fn new(on_start: &str, stats_interval: Duration) -> Rig {
        Rig::with_engine_timeout(on_start, stats_interval, 5.0)
    }

    fn with_engine_timeout(
        on_start: &str,
        stats_interval: Duration,
        engine_timeout_sec: f64,
    ) -> Rig {
        let fake = FakeEngine::new(on_start);
        let store = tempfile::tempdir().expect("store");
        fs::create_dir_all(store.path().join("apps")).expect("mkdir");
        fs::write(store.path().join("apps/prog.py"), "print('hi')\n").expect("program");
        let settings = ContainerSettings {
            engine: fake.binary(),
            image: "runner:latest".into(),
            pull: "never".into(),
            stop_grace_sec: 1.0,
            engine_timeout_sec,
            ..ContainerSettings::default()
        };
        let launcher = ContainerLauncher::new(ContainerOptions {
            settings,
            cmd: "/entrypoint.sh".into(),
            runtime_uuid: RUNTIME_UUID.into(),
            store: Store::File(store.path().to_path_buf()),
            fetch: FetchLimits {
                timeout: Duration::from_secs(5),
                total_timeout: Duration::from_secs(60),
                max_file_bytes: 1024 * 1024,
                max_files: 100,
                max_total_bytes: 1024 * 1024,
            },
            mqtt_username: Some("user".into()),
            mqtt_password: Some("token".into()),
            stats_interval,
        })
        .expect("launcher");
        let (outbox_tx, outbox) = outbox::outbox(OutputSettings::default(), OutputEncoding::Raw);
        Rig {
            fake,
            launcher,
            _store: store,
            state: tempfile::tempdir().expect("state"),
            outbox,
            outbox_tx,
            seen: Vec::new(),
        }
    }

    /// Launch a module as the supervisor's `launch()` does.
    fn launch(&self) -> Module {
        self.launch_with(StopFlag::default())
    }

    fn launch_with(&self, stop: StopFlag) -> Module {
        self.launch_as(&uuid::Uuid::new_v4().to_string(), stop)
    }

    fn launch_as(&self, uuid: &str, stop: StopFlag) -> Module {
        self.launch_request(request(uuid), stop)
    }

    fn launch_request(&self, request: ModuleRequest, stop: StopFlag) -> Module {
        let uuid = &request.uuid.clone();
        let (stdin_tx, stdin) = crossbeam_channel::bounded(16);
        let (events_tx, events) = crossbeam_channel::unbounded();
        let stats = Arc::new(ModuleStats::default());
        let work_dir = self.state.path().join(uuid);
        let context = LaunchContext {
            request,
            work_dir: work_dir.clone(),
            output: self
                .outbox_tx
                .module_output(format!("{uuid}/stdout"), format!("{uuid}/stderr")),
            stdin,
            events: events_tx,
            stop: stop.clone(),
            stats: stats.clone(),
        };
        let thread = self.launcher.launch(context).expect("launch");
        Module {
            container: container_name(uuid),
            uuid: uuid.to_string(),
            work_dir,
            events,
            stop,
            stdin: Some(stdin_tx),
            stats,
            thread: Some(thread),
        }
    }

    /// Everything published so far on `topic`, joined.
    fn published(&mut self, topic: &str) -> String {
        while let Some(item) = self.outbox.take(true) {
            let text = String::from_utf8_lossy(&item.message.payload).into_owned();
            self.seen.push((item.message.topic, text));
        }
        self.seen
            .iter()
            .filter(|(seen, _)| seen == topic)
            .map(|(_, text)| text.as_str())
            .collect()
    }
}

fn request(uuid: &str) -> ModuleRequest {
    ModuleRequest {
        uuid: uuid.into(),
        name: "pinger".into(),
        filetype: FileType::Python,
        file: "prog.py".into(),
        location: "apps".into(),
        argv: vec!["--once".into()],
        env: vec![("MODE".into(), "test".into())],
        dirs: Vec::new(),
        apis: Vec::new(),
        limit_sec: None,
        namespace: "public".into(),
        scene: String::new(),
        sha256: Default::default(),
        raw: serde_json::Value::Null,
    }
}

/// One launched module, as the supervisor holds it.
struct Module {
    uuid: String,
    container: String,
    work_dir: PathBuf,
    events: Receiver<ModuleEvent>,
    stop: StopFlag,
    stdin: Option<Sender<Vec<u8>>>,
    stats: Arc<ModuleStats>,
    thread: Option<JoinHandle<()>>,
}

impl Module {
    fn next_event(&self) -> ModuleEvent {
        self.events
            .recv_timeout(WAIT)
            .unwrap_or_else(|err| panic!("no event from module '{}': {err}", self.uuid))
    }

    fn started(&self) -> ModuleEvent {
        ModuleEvent::Started {
            uuid: self.uuid.clone(),
        }
    }

    /// The module's thread ended without sending anything more.
    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            thread.join().expect("module thread");
        }
        assert_eq!(self.events.try_recv().ok(), None, "an event after the last");
    }

    /// Delete, as the supervisor does: raise the flag, close stdin, ask the launcher.
    fn delete(&mut self, launcher: &ContainerLauncher) {
        self.stop.raise();
        self.stdin = None;
        launcher.stop(&self.uuid);
    }

    fn stdout_topic(&self) -> String {
        format!("{}/stdout", self.uuid)
    }

    fn stderr_topic(&self) -> String {
        format!("{}/stderr", self.uuid)
    }
}

fn assert_gone(path: &Path) {
    assert!(!path.exists(), "'{}' was left behind", path.display());
}

/// Chores never tick during the test (for tests that drive every step themselves).
const NO_CHORES: Duration = Duration::from_secs(3600);

/// The first word of each call that is one of `subcommands`, in call order.
fn sequence(calls: &[String], subcommands: &[&str]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|call| call.split_whitespace().next())
        .filter(|word| subcommands.contains(word))
        .map(str::to_string)
        .collect()
}

#[test]
fn stale_container_of_the_same_name_is_removed_and_the_create_tried_again() {
    let mut rig = Rig::new(on_start::HELLO, NO_CHORES);
    assert_eq!(rig.launcher.sweep_orphans(), 0);
    let uuid = uuid::Uuid::new_v4().to_string();
    rig.fake
        .leave_container(&container_name(&uuid), RUNTIME_UUID);

    let mut module = rig.launch_as(&uuid, StopFlag::default());

    assert_eq!(module.next_event(), module.started());
    assert_eq!(
        module.next_event(),
        ModuleEvent::Exited {
            uuid: uuid.clone(),
            code: Some(0),
            reason: "exited with code 0".into()
        }
    );
    module.join();
    assert_eq!(rig.published(&module.stdout_topic()), "hello\n");
    let calls = rig.fake.calls();
    assert_eq!(
        sequence(&calls, &["create", "rm", "start"]),
        ["create", "rm", "create", "start", "rm"],
        "{calls:#?}"
    );
    let stale = format!("rm --force --volumes -- {}", module.container);
    let own = format!("rm --force --volumes -- id-{}", module.container);
    assert_eq!(rig.fake.calls_of("rm"), [stale, own]);
    assert!(!rig.fake.has_container(&module.container));
    assert_gone(&module.work_dir);
}

#[test]
fn start_that_fails_before_running_is_failed_with_the_engines_words_and_no_stderr_output() {
    for on_start in [on_start::NO_ENTRYPOINT, on_start::NO_ENTRYPOINT_QUIET_STATE] {
        let mut rig = Rig::new(on_start, NO_CHORES);
        let mut module = rig.launch();

        assert_eq!(
            module.next_event(),
            ModuleEvent::Failed {
                uuid: module.uuid.clone(),
                error: format!(
                    "container '{}' could not start: Error response from daemon: failed to \
                     create task: exec: \"/entrypoint.sh\": no such file",
                    module.container
                ),
            }
        );
        module.join();
        assert_eq!(rig.published(&module.stderr_topic()), "");
        assert_eq!(rig.published(&module.stdout_topic()), "");
        assert_eq!(
            rig.fake.calls_of("rm"),
            [format!("rm --force --volumes -- id-{}", module.container)]
        );
        assert!(!rig.fake.has_container(&module.container));
        assert_gone(&module.work_dir);
    }
}

#[test]
fn container_that_exits_with_code_3_is_exited_after_all_its_output() {
    let mut rig = Rig::new(on_start::EXIT_3, NO_CHORES);
    let mut module = rig.launch();

    assert_eq!(module.next_event(), module.started());
    assert_eq!(
        module.next_event(),
        ModuleEvent::Exited {
            uuid: module.uuid.clone(),
            code: Some(3),
            reason: "exited with code 3".into()
        }
    );
    // Taken right after `Exited`: everything must be in the outbox already.
    assert_eq!(rig.published(&module.stdout_topic()), "out-1\nout-2\n");
    assert_eq!(rig.published(&module.stderr_topic()), "err-1\nerr-2\n");
    module.join();
    assert!(!rig.fake.has_container(&module.container));
    assert_gone(&module.work_dir);
}

#[test]
fn container_gets_the_program_its_arguments_env_and_labels() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());
    assert!(matches!(
        module.next_event(),
        ModuleEvent::Exited { code: Some(0), .. }
    ));
    module.join();

    let create = rig.fake.calls_of("create").pop().expect("a create call");
    let uuid = &module.uuid;
    for part in [
        format!("--name {}", module.container),
        format!("--label {}={RUNTIME_UUID}", cli::LABEL_RUNTIME),
        format!("--label {}={uuid}", cli::LABEL_MODULE),
        format!("--label {}=pinger", cli::LABEL_MODULE_NAME),
        "--workdir /usr/src/app --pull never --init runner:latest /entrypoint.sh prog.py --once"
            .to_string(),
    ] {
        assert!(create.contains(&part), "'{part}' not in '{create}'");
    }
    // The env comes in a file only the runtime's user can read, gone after the create.
    assert!(!create.contains("MODE=test"), "{create}");
    assert_eq!(
        rig.fake.env_file_of(&module.container),
        format!("600\nMODE=test\nPROGRAM_OBJECT_ID={uuid}\n")
    );
    let env_file = create
        .split_once("--env-file ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .expect("an --env-file in the create call");
    assert!(!Path::new(env_file).exists(), "{env_file} left behind");
}

#[test]
fn env_values_never_appear_in_the_process_list() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    rig.fake.touch("create-hold");
    let module = rig.launch();
    rig.fake.wait_for("the create call", |fake| {
        !fake.calls_of("create").is_empty()
    });

    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    rig.fake.touch("create-go");
    let listed = String::from_utf8_lossy(&ps.stdout);
    let create = listed
        .lines()
        .find(|line| line.contains(" create ") && line.contains(&module.container));
    assert!(
        create.is_some(),
        "the held create is in the list:\n{listed}"
    );
    assert!(!listed.contains("MODE=test"), "{create:?}");
    assert_eq!(module.next_event(), module.started());
}

#[test]
fn stdin_lines_reach_the_container() {
    let echo = r#"set_state "$n" running
read line
echo "got $line"
set_state "$n" exited 0
exit 0
"#;
    let mut rig = Rig::new(echo, NO_CHORES);
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());

    let stdin = module.stdin.take().expect("stdin");
    stdin.send(b"ping\n".to_vec()).expect("send");

    assert!(matches!(
        module.next_event(),
        ModuleEvent::Exited { code: Some(0), .. }
    ));
    assert_eq!(rig.published(&module.stdout_topic()), "got ping\n");
    module.join();
}

#[test]
fn module_deleted_before_its_create_fails_without_creating_a_container() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    let stop = StopFlag::default();
    stop.raise();
    let mut module = rig.launch_with(stop);
    rig.launcher.stop(&module.uuid);

    assert_eq!(
        module.next_event(),
        ModuleEvent::Failed {
            uuid: module.uuid.clone(),
            error: "deleted before it started".into()
        }
    );
    assert_gone(&module.work_dir);
    module.join();
    assert_eq!(rig.fake.calls_of("create"), Vec::<String>::new());
    assert_eq!(rig.fake.calls_of("start"), Vec::<String>::new());
}

#[test]
fn module_deleted_while_its_container_is_created_fails_and_the_container_is_removed() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    rig.fake.touch("create-hold");
    let mut module = rig.launch();
    rig.fake.wait_for("the create call", |fake| {
        !fake.calls_of("create").is_empty()
    });

    module.delete(&rig.launcher);
    rig.fake.touch("create-go");

    assert_eq!(
        module.next_event(),
        ModuleEvent::Failed {
            uuid: module.uuid.clone(),
            error: "deleted before it started".into()
        }
    );
    module.join();
    assert_eq!(rig.fake.calls_of("start"), Vec::<String>::new());
    assert!(rig
        .fake
        .calls_of("rm")
        .contains(&format!("rm --force --volumes -- id-{}", module.container)));
    assert!(!rig.fake.has_container(&module.container));
    assert_gone(&module.work_dir);
}

#[test]
fn engine_lost_mid_run_ends_the_module_and_its_removal_is_retried_once_back() {
    let mut rig = Rig::new(on_start::DAEMON_DIES, Duration::from_millis(200));
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());

    rig.fake.touch("release");

    match module.next_event() {
        ModuleEvent::Exited { uuid, code, reason } => {
            assert_eq!(uuid, module.uuid);
            assert_eq!(code, None, "the engine's own exit status is no program's");
            assert_eq!(
                reason,
                format!(
                    "container engine lost: container engine '{}' is not reachable: Cannot \
                     connect to the Docker daemon at unix:///var/run/docker.sock. Is the \
                     docker daemon running?",
                    rig.fake.binary()
                )
            );
        }
        other => panic!("expected exited, got {other:?}"),
    }
    module.join();
    assert_eq!(rig.published(&module.stdout_topic()), "working\n");
    assert_gone(&module.work_dir);
    // By id: once the module is over, its name may be a new container's.
    let removal = format!("rm --force --volumes -- id-{}", module.container);
    assert!(rig.fake.calls().contains(&format!("DOWN {removal}")));
    assert!(rig.fake.has_container(&module.container));

    fs::remove_file(rig.fake.path("down")).expect("engine back");

    rig.fake.wait_for("the retried removal", |fake| {
        !fake.has_container(&module.container)
    });
    assert!(rig.fake.calls().contains(&removal));
}

#[test]
fn sweep_removes_the_containers_of_this_runtime_only() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    rig.fake.leave_container("sideload-old-1", RUNTIME_UUID);
    rig.fake.leave_container("sideload-old-2", RUNTIME_UUID);
    rig.fake
        .leave_container("sideload-theirs", "another-runtime");

    assert_eq!(rig.launcher.sweep_orphans(), 2);

    assert_eq!(
        rig.fake.calls_of("rm"),
        [
            "rm --force --volumes -- id-sideload-old-1",
            "rm --force --volumes -- id-sideload-old-2"
        ]
    );
    assert!(!rig.fake.has_container("sideload-old-1"));
    assert!(!rig.fake.has_container("sideload-old-2"));
    assert!(rig.fake.has_container("sideload-theirs"));
    // Done once: a second call asks the engine nothing.
    assert_eq!(rig.launcher.sweep_orphans(), 0);
    assert_eq!(rig.fake.calls_of("ps").len(), 1);
}

#[test]
fn sweep_with_the_engine_down_stays_owed_and_runs_before_the_next_create() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    rig.fake.leave_container("sideload-old-1", RUNTIME_UUID);
    rig.fake.leave_container("sideload-old-2", RUNTIME_UUID);
    rig.fake.touch("down");

    assert_eq!(rig.launcher.sweep_orphans(), 0);

    fs::remove_file(rig.fake.path("down")).expect("engine back");
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());
    assert!(matches!(
        module.next_event(),
        ModuleEvent::Exited { code: Some(0), .. }
    ));
    module.join();

    let ps = rig.fake.first_call("ps ").expect("a ps call once back");
    let create = rig.fake.first_call("create ").expect("a create call");
    assert!(ps < create, "{:#?}", rig.fake.calls());
    assert!(!rig.fake.has_container("sideload-old-1"));
    assert!(!rig.fake.has_container("sideload-old-2"));
}

#[test]
fn a_sweep_still_owed_after_a_failed_look_never_removes_this_runs_containers() {
    let mut rig = Rig::new(on_start::RUN_UNTIL_STOPPED, NO_CHORES);
    rig.fake.leave_container("sideload-old-1", RUNTIME_UUID);
    rig.fake.touch("ps-fails");
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());

    fs::remove_file(rig.fake.path("ps-fails")).expect("ps answers again");
    assert_eq!(
        rig.launcher.sweep_orphans(),
        1,
        "only the crashed run's container"
    );

    assert!(!rig.fake.has_container("sideload-old-1"));
    assert!(rig.fake.has_container(&module.container));
    assert_eq!(rig.published(&module.stdout_topic()), "ready\n");
    module.delete(&rig.launcher);
    assert!(matches!(module.next_event(), ModuleEvent::Exited { .. }));
    module.join();
}

#[test]
fn an_orphan_that_cannot_be_removed_is_retried_by_id_without_sweeping_again() {
    let rig = Rig::new(on_start::HELLO, Duration::from_millis(100));
    rig.fake.leave_container("sideload-old-1", RUNTIME_UUID);
    rig.fake.touch("rm-fails");

    assert_eq!(rig.launcher.sweep_orphans(), 0);
    assert!(rig.fake.has_container("sideload-old-1"));
    assert_eq!(rig.launcher.sweep_orphans(), 0, "the sweep is done");
    assert_eq!(rig.fake.calls_of("ps").len(), 1);

    fs::remove_file(rig.fake.path("rm-fails")).expect("rm works again");
    rig.fake.wait_for("the retried removal", |fake| {
        !fake.has_container("sideload-old-1")
    });
    assert_eq!(rig.fake.calls_of("ps").len(), 1, "no second sweep");
    assert!(rig
        .fake
        .calls()
        .contains(&"rm --force --volumes -- id-sideload-old-1".to_string()));
}

#[test]
fn cpu_time_and_network_come_from_the_kernel_when_it_shows_the_container() {
    let rig = Rig::new(on_start::RUN_UNTIL_STOPPED, Duration::from_millis(100));
    // This test process stands in for the container's first process.
    let pid = std::process::id();
    fs::write(rig.fake.path("pid"), pid.to_string()).expect("pid");
    let cgroup_before = kernel::CpuUsage::of_process(pid)
        .and_then(|usage| usage.read())
        .expect("this process's cgroup CPU time");
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());

    let stats = module.stats.clone();
    rig.fake
        .wait_for("a stats sample", |_| stats.polls.load(Relaxed) >= 2);
    let network = kernel::network(pid).expect("this process's network");

    // The engine's figures (50 % of the interval, 1,500 bytes) are not used.
    assert!(stats.cpu_time_ns.load(Relaxed) >= cgroup_before);
    assert!(stats.net_rx_bytes.load(Relaxed) <= network.rx_bytes);
    assert!(stats.net_rx_pkts.load(Relaxed) <= network.rx_packets);
    assert_eq!(stats.mem_bytes(), 10 * 1024 * 1024);
    module.delete(&rig.launcher);
    assert!(matches!(module.next_event(), ModuleEvent::Exited { .. }));
    module.join();
}

#[test]
fn one_stats_call_fills_the_running_modules_stats() {
    let rig = Rig::new(on_start::RUN_UNTIL_STOPPED, Duration::from_millis(100));
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());

    let stats = module.stats.clone();
    rig.fake
        .wait_for("a stats sample", |_| stats.mem_bytes() > 0);

    assert_eq!(stats.mem_bytes(), 10 * 1024 * 1024);
    assert_eq!(stats.net_rx_bytes.load(Relaxed), 1_500);
    assert_eq!(stats.net_tx_bytes.load(Relaxed), 2_000);
    assert_eq!(stats.blk_read_bytes.load(Relaxed), 4_000);
    assert_eq!(stats.blk_write_bytes.load(Relaxed), 8_000);
    assert!(stats.cpu_time_ns.load(Relaxed) > 0);
    assert!(stats.polled.load(Relaxed), "counters filled by polls");
    assert!(stats.polls.load(Relaxed) >= 1);
    let stats_call = format!(
        "stats --no-stream --format {{{{json .}}}} -- {}",
        module.container
    );
    assert!(
        rig.fake.calls().contains(&stats_call),
        "{:#?}",
        rig.fake.calls()
    );

    module.delete(&rig.launcher);
    assert_eq!(
        module.next_event(),
        ModuleEvent::Exited {
            uuid: module.uuid.clone(),
            code: Some(143),
            reason: "stopped".into()
        }
    );
    module.join();
    // By id: a stop that outlives its module must never reach a later container of
    // the same name.
    assert_eq!(
        rig.fake.calls_of("stop"),
        [format!("stop --time 1 -- id-{}", module.container)]
    );
    assert!(!rig.fake.has_container(&module.container));
    assert_gone(&module.work_dir);
}

/// Longest a module may take to end once its stop or start time ran out: grace (1 s)
/// and engine timeout (5 s) of the rig, and some slack.
const HUNG_WAIT: Duration = Duration::from_secs(12);

#[test]
fn deleted_module_whose_attached_start_never_ends_is_exited_and_removed() {
    let rig = Rig::new(on_start::ATTACH_HANGS, NO_CHORES);
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());

    module.delete(&rig.launcher);
    let event = module.events.recv_timeout(HUNG_WAIT);
    rig.fake.touch("end-attach");

    match event {
        Ok(ModuleEvent::Exited { reason, .. }) => assert_eq!(reason, "stopped"),
        other => panic!("expected exited, got {other:?}"),
    }
    module.join();
    assert!(!rig.fake.has_container(&module.container));
    assert_gone(&module.work_dir);
}

#[test]
fn start_that_never_confirms_and_never_ends_is_failed_in_time_and_removed() {
    let rig = Rig::new(on_start::START_HANGS, NO_CHORES);
    let mut module = rig.launch();

    let event = module.events.recv_timeout(HUNG_WAIT);
    rig.fake.touch("end-attach");

    assert_eq!(
        event.ok(),
        Some(ModuleEvent::Failed {
            uuid: module.uuid.clone(),
            error: format!(
                "container '{}' could not start: it did not start in time",
                module.container
            ),
        })
    );
    module.join();
    assert!(!rig.fake.has_container(&module.container));
    assert_gone(&module.work_dir);
}

#[test]
fn shutdown_removes_a_container_whose_start_is_still_under_way() {
    let rig = Rig::new(on_start::START_SLOW, NO_CHORES);
    let mut module = rig.launch();
    rig.fake
        .wait_for("the start call", |fake| !fake.calls_of("start").is_empty());

    rig.launcher.shutdown();
    let left = rig.fake.has_container(&module.container);
    rig.fake.touch("end-attach");

    assert!(
        !left,
        "container left behind; calls: {:#?}",
        rig.fake.calls()
    );
    assert!(matches!(
        module.events.recv_timeout(HUNG_WAIT),
        Ok(ModuleEvent::Failed { .. })
    ));
    module.join();
    assert_gone(&module.work_dir);
}

#[test]
fn create_after_shutdown_is_failed_without_a_container() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    rig.launcher.shutdown();

    let mut module = rig.launch();

    assert_eq!(
        module.next_event(),
        ModuleEvent::Failed {
            uuid: module.uuid.clone(),
            error: "the runtime is shutting down".into()
        }
    );
    module.join();
    assert_eq!(rig.fake.calls_of("create"), Vec::<String>::new());
    assert_gone(&module.work_dir);
}

#[test]
fn container_of_the_same_name_from_another_runtime_is_never_removed() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    let uuid = uuid::Uuid::new_v4().to_string();
    let name = container_name(&uuid);
    rig.fake.leave_container(&name, "another-runtime");

    let mut module = rig.launch_as(&uuid, StopFlag::default());

    match module.next_event() {
        ModuleEvent::Failed { error, .. } => {
            assert!(error.contains("is already in use"), "{error}")
        }
        other => panic!("expected failed, got {other:?}"),
    }
    module.join();
    assert!(rig.fake.has_container(&name), "{:#?}", rig.fake.calls());
    assert_eq!(rig.fake.calls_of("rm"), Vec::<String>::new());
    assert_gone(&module.work_dir);
}

#[test]
fn a_slow_create_holds_up_neither_stats_nor_other_creates() {
    let rig = Rig::new(on_start::RUN_UNTIL_STOPPED, Duration::from_millis(100));
    let a = rig.launch();
    assert_eq!(a.next_event(), a.started());
    let stats = a.stats.clone();
    rig.fake
        .wait_for("stats of a", |_| stats.polls.load(Relaxed) >= 2);

    rig.fake.touch("create-hold");
    let b = rig.launch();
    rig.fake
        .wait_for("b's create", |fake| fake.calls_of("create").len() == 2);
    let polls = stats.polls.load(Relaxed);
    rig.fake.wait_for("stats of a while b's create hangs", |_| {
        stats.polls.load(Relaxed) >= polls + 2
    });
    let c = rig.launch();
    rig.fake.wait_for("c's create while b's hangs", |fake| {
        fake.calls_of("create").len() == 3
    });

    rig.fake.touch("create-go");
    assert_eq!(b.next_event(), b.started());
    assert_eq!(c.next_event(), c.started());
    for mut module in [a, b, c] {
        module.delete(&rig.launcher);
    }
}

#[test]
fn a_uuid_that_cannot_name_a_container_fails_before_any_fetch() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    let mut module = rig.launch_as("bad id!", StopFlag::default());

    match module.next_event() {
        ModuleEvent::Failed { error, .. } => assert_eq!(
            error,
            "module uuid 'bad id!' cannot name a container: it holds ' ', and container \
             names take only letters, digits, '_', '.' and '-'"
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
    module.join();
    assert!(!module.work_dir.exists());
    assert_eq!(rig.fake.calls(), Vec::<String>::new());
}

#[test]
fn a_container_the_engine_makes_after_its_create_was_given_up_on_is_swept() {
    let rig = Rig::with_engine_timeout(on_start::HELLO, Duration::from_millis(100), 0.5);
    rig.fake.touch("create-hold");
    let mut module = rig.launch();
    match module.next_event() {
        ModuleEvent::Failed { error, .. } => {
            assert!(error.contains("did not finish within"), "{error}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    module.join();

    // The engine finishes the create after all, once the removal has run.
    rig.fake.leave_container(&module.container, RUNTIME_UUID);
    rig.fake.wait_for("the late container's removal", |fake| {
        !fake.has_container(&module.container)
    });
}

#[test]
fn a_program_named_like_an_option_is_passed_as_a_path() {
    let rig = Rig::new(on_start::HELLO, NO_CHORES);
    fs::write(rig._store.path().join("apps/-c.py"), "print(1)\n").expect("program");
    let request = ModuleRequest {
        file: "-c.py".into(),
        ..request(&uuid::Uuid::new_v4().to_string())
    };
    let mut module = rig.launch_request(request, StopFlag::default());
    assert_eq!(module.next_event(), module.started());
    assert!(matches!(
        module.next_event(),
        ModuleEvent::Exited { code: Some(0), .. }
    ));
    module.join();

    let create = rig.fake.calls_of("create").pop().expect("a create call");
    assert!(
        create.ends_with(" runner:latest /entrypoint.sh ./-c.py --once"),
        "{create}"
    );
}

#[test]
fn stats_follow_a_shorter_keepalive_interval_from_the_orchestrator() {
    let rig = Rig::new(on_start::RUN_UNTIL_STOPPED, Duration::from_secs(60));
    let mut module = rig.launch();
    assert_eq!(module.next_event(), module.started());

    rig.launcher.keepalive_interval(Duration::from_secs(1));
    let stats = module.stats.clone();
    rig.fake
        .wait_for("two stats samples", |_| stats.polls.load(Relaxed) >= 2);

    module.delete(&rig.launcher);
    assert!(matches!(module.next_event(), ModuleEvent::Exited { .. }));
    module.join();
}
