//! The container engine as tests see it: what `docker` lists, the runner image the
//! suite uses, and Python programs for the store, written by each test itself.

#![allow(dead_code)]

use std::process::Command;

/// The runner image `make test` builds offline (containers/build-offline-image.sh).
pub const RUNNER_IMAGE: &str = "slframework/slruntime-python-runner";

/// Names of all containers, running or not, labelled with `runtime_uuid`.
pub fn containers_of_runtime(runtime_uuid: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "--all",
        "--filter",
        &format!("label=org.silverline.sideload.runtime={runtime_uuid}"),
        "--format",
        "{{.Names}}",
    ]);
    out.lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The runtime has no container left (it removes each before reporting the exit).
pub fn assert_no_containers_left(runtime_uuid: &str) {
    let left = containers_of_runtime(runtime_uuid);
    assert!(
        left.is_empty(),
        "containers of runtime '{runtime_uuid}' left: {left:?}"
    );
}

/// Run `docker` with `args`; panics when it fails. Returns stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker (is it installed?)");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a container of that name exists in any state.
pub fn container_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["container", "inspect", name])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// A container with no labels of ours, removed when dropped.
pub struct Bystander {
    pub name: String,
}

impl Bystander {
    pub fn start(name: &str) -> Bystander {
        docker(&[
            "run",
            "--detach",
            "--name",
            name,
            RUNNER_IMAGE,
            "python3",
            "-c",
            "import time; time.sleep(300)",
        ]);
        Bystander { name: name.into() }
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "--force", &self.name])
            .output();
    }
}

/// Python programs, each in a folder of its own (a module gets its whole folder).
pub mod python {
    pub const ARGV_ENV: &str = r#"import json, os, sys
files = sorted(os.path.relpath(os.path.join(d, f), ".") for d, _, fs in os.walk(".") for f in fs)
auth = None
if os.path.exists(".arena_mqtt_auth"):
    with open(".arena_mqtt_auth") as f:
        auth = json.load(f)
print(json.dumps({
    "argv": sys.argv[1:],
    "env": {k: v for k, v in os.environ.items() if k.startswith("SL_") or k == "PROGRAM_OBJECT_ID"},
    "files": files,
    "auth_user": auth and auth.get("username"),
    "auth_token_set": bool(auth and auth.get("token")),
}))
"#;

    pub const ECHO: &str = r#"import sys
print("ready", flush=True)
for line in sys.stdin:
    print("echo: " + line.rstrip("\n"), flush=True)
"#;

    pub const EXIT_CODE: &str = r#"import sys
print("bye")
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
"#;

    pub const PRINTER: &str = r#"import sys
n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
sys.stdout.write("".join("line %d\n" % i for i in range(n)))
"#;

    pub const STUBBORN: &str = r#"import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(60)
"#;

    pub const STDERR_WRITER: &str = r#"import sys
print("to stderr", file=sys.stderr, flush=True)
print("to stdout", flush=True)
"#;

    pub const FOLDER_MAIN: &str = r#"from lib.helper import greet
with open("data/greeting.txt") as f:
    print("helper says " + greet(f.read().strip()))
"#;
    pub const FOLDER_HELPER: &str = "def greet(text):\n    return text.upper()\n";
}

/// Removes every container labelled with a runtime's uuid when dropped: a test that
/// fails (or kills its runtime) leaves nothing on the machine.
pub struct Janitor {
    pub runtime_uuid: String,
    /// `DOCKER_HOST` of a private engine, or none for the machine's engine.
    pub host: Option<String>,
}

impl Drop for Janitor {
    fn drop(&mut self) {
        let mut list = Command::new("docker");
        if let Some(host) = &self.host {
            list.env("DOCKER_HOST", host);
        }
        let filter = format!(
            "label=org.silverline.sideload.runtime={}",
            self.runtime_uuid
        );
        let Ok(out) = list
            .args(["ps", "--all", "--quiet", "--filter", &filter])
            .output()
        else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let mut remove = Command::new("docker");
            if let Some(host) = &self.host {
                remove.env("DOCKER_HOST", host);
            }
            let _ = remove.args(["rm", "--force", id]).output();
        }
    }
}

/// A Docker engine of the test's own (its own socket, data, containerd and network
/// namespace), which the test may stop and start without disturbing the machine's
/// engine. It has no bridge network: its containers run with `--network none`.
pub struct PrivateEngine {
    dir: tempfile::TempDir,
    /// Value for `DOCKER_HOST`.
    pub host: String,
    child: Option<std::process::Child>,
}

impl PrivateEngine {
    /// An engine that is not running yet: its socket does not exist.
    pub fn unstarted() -> PrivateEngine {
        let dir = tempfile::Builder::new()
            .prefix("sl-engine")
            .tempdir_in("/tmp")
            .expect("engine temp dir");
        let host = format!("unix://{}/docker.sock", dir.path().display());
        PrivateEngine {
            dir,
            host,
            child: None,
        }
    }

    /// A running engine holding the runner image.
    pub fn start() -> PrivateEngine {
        let mut engine = PrivateEngine::unstarted();
        engine.launch();
        engine.load_runner_image();
        engine
    }

    pub fn launch(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))
            .expect("dockerd log");
        // A network namespace of its own: an engine without a bridge removes the
        // host's `docker0` otherwise, breaking the machine's engine.
        let child = Command::new("unshare")
            .args(["--net", "--", "dockerd"])
            .arg("--host")
            .arg(&self.host)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["--bridge", "none", "--iptables=false", "--ip-masq=false"])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn unshare dockerd (is docker.io installed?)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self.answers() {
            assert!(
                std::time::Instant::now() < deadline,
                "private dockerd did not answer within 60 s:\n{}",
                std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn answers(&self) -> bool {
        self.docker(&["info", "--format", "{{.ServerVersion}}"])
            .is_ok_and(|out| out.status.success())
    }

    fn docker(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .output()
    }

    /// Copy the runner image over from the machine's engine.
    pub fn load_runner_image(&self) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker save {RUNNER_IMAGE} | DOCKER_HOST='{}' docker load --quiet",
                self.host
            ))
            .status()
            .expect("docker save | docker load");
        assert!(
            status.success(),
            "loading the runner image failed: {status}"
        );
    }

    /// Names of containers labelled with `runtime_uuid` on this engine.
    pub fn containers_of_runtime(&self, runtime_uuid: &str) -> Vec<String> {
        let filter = format!("label=org.silverline.sideload.runtime={runtime_uuid}");
        let out = self
            .docker(&["ps", "--all", "--filter", &filter, "--format", "{{.Names}}"])
            .expect("docker ps");
        assert!(
            out.status.success(),
            "docker ps on the private engine failed"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Stop the engine as an operator would (SIGTERM; it stops its containers).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.child.is_some() {
            let filter = "label=org.silverline.sideload.runtime";
            if let Ok(out) = self.docker(&["ps", "--all", "--quiet", "--filter", filter]) {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = self.docker(&["rm", "--force", id]);
                }
            }
        }
        self.stop();
    }
}

/// The runtime's only container left is that of module `module_uuid`.
pub fn assert_no_containers_left_but(runtime_uuid: &str, module_uuid: &str) {
    let left = containers_of_runtime(runtime_uuid);
    assert_eq!(
        left,
        [format!("sideload-{module_uuid}")],
        "containers of runtime '{runtime_uuid}'"
    );
}
