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
            "--network",
            "none",
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

/// `options` with the Python test programs `names` (folders of
/// `tests/programs/python/`) in the store, each as `py/<name>/...`: a module gets the
/// whole folder of its program.
pub fn with_python(mut options: super::RuntimeOptions, names: &[&str]) -> super::RuntimeOptions {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/python");
    for name in names {
        let mut folders = vec![root.join(name)];
        while let Some(folder) = folders.pop() {
            let entries = std::fs::read_dir(&folder)
                .unwrap_or_else(|err| panic!("test program folder '{}': {err}", folder.display()));
            for entry in entries {
                let path = entry.expect("folder entry").path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "__pycache__") {
                        folders.push(path);
                    }
                    continue;
                }
                let relative = path
                    .strip_prefix(&root)
                    .expect("inside the programs folder");
                let bytes = std::fs::read(&path).expect("read test program");
                options = options.program(&format!("py/{}", relative.display()), bytes);
            }
        }
    }
    options
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
