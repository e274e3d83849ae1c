//! Runs one engine command to completion within a time bound: no shell, stdin null,
//! stdout and stderr captured (bounded), and on timeout the whole process group is
//! killed so that nothing it started keeps running or keeps the pipes open.
//!
//! Not for: building command lines or reading what the engine printed (`cli.rs`).

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::thread;
use std::time::Duration;

/// At most this much of each output stream is kept; the rest is read and dropped so
/// that the engine never blocks on a full pipe.
const OUTPUT_LIMIT: u64 = 4 * 1024 * 1024;

/// How often a spawn that found the binary busy being written is tried again.
const TEXT_BUSY_RETRIES: u32 = 5;

/// What a command that ran to its end printed, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Finished {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Why a command did not run to its end.
#[derive(Debug)]
pub(super) enum RunError {
    /// The binary does not exist.
    NotFound,
    /// Killed after the time bound.
    TimedOut,
    /// Any other reason the process could not be started or waited for.
    Io(io::Error),
}

/// Runs `binary args...` and waits at most `timeout` for it to exit and close its
/// output.
pub(super) fn run(binary: &str, args: &[String], timeout: Duration) -> Result<Finished, RunError> {
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0);

    let mut child = spawn(&mut command)?;
    let pid = child.id();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());

    let (sender, receiver) = crossbeam_channel::bounded(1);
    let waiter = thread::Builder::new()
        .name("engine-command".into())
        .spawn(move || {
            let output = collect(stdout, stderr);
            wait_exited_without_reaping(pid);
            let _ = sender.send(output);
        });
    if let Err(error) = waiter {
        kill_group(pid);
        let _ = child.wait();
        return Err(RunError::Io(error));
    }

    match receiver.recv_timeout(timeout) {
        Ok((stdout, stderr)) => {
            let status = child.wait().map_err(RunError::Io)?;
            Ok(Finished {
                success: status.success(),
                code: status.code(),
                stdout,
                stderr,
            })
        }
        Err(_) => {
            kill_group(pid);
            let _ = child.wait();
            Err(RunError::TimedOut)
        }
    }
}

fn spawn(command: &mut Command) -> Result<Child, RunError> {
    let mut attempt = 0;
    loop {
        match command.spawn() {
            Ok(child) => return Ok(child),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(RunError::NotFound)
            }
            // ETXTBSY: another thread's fork still holds the binary open for writing
            // (seen when a binary was just written, as the tests' scripted engines
            // are); it clears within moments.
            Err(error) if error.raw_os_error() == Some(libc::ETXTBSY) => {
                attempt += 1;
                if attempt > TEXT_BUSY_RETRIES {
                    return Err(RunError::Io(error));
                }
                thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
            }
            Err(error) => return Err(RunError::Io(error)),
        }
    }
}

/// Reads both streams to their end, stderr on a helper thread so that neither pipe
/// can fill up while the other is read.
fn collect(stdout: Option<ChildStdout>, stderr: Option<ChildStderr>) -> (String, String) {
    let stderr_reader = thread::Builder::new()
        .name("engine-stderr".into())
        .spawn(move || read_bounded(stderr));
    let out = read_bounded(stdout);
    let err = match stderr_reader {
        Ok(handle) => handle.join().unwrap_or_default(),
        Err(_) => String::new(),
    };
    (out, err)
}

fn read_bounded(stream: Option<impl Read>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut bytes = Vec::new();
    let _ = (&mut stream).take(OUTPUT_LIMIT).read_to_end(&mut bytes);
    let _ = io::copy(&mut stream, &mut io::sink());
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Blocks until the child exited but leaves it a zombie, so that its pid (and
/// process group id) cannot be reused before the owner of the `Child` reaps it:
/// a kill after a timeout can never hit an unrelated process.
pub(crate) fn wait_exited_without_reaping(pid: u32) {
    loop {
        // SAFETY: siginfo_t is plain data that waitid fills in; zeroed is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid only writes into `info`, which lives for the call.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: plain system calls; the child is not reaped yet, so `pid` is still ours.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}
