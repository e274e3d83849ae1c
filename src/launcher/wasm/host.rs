//! The host side a WebAssembly module talks to through WASI: its stdin (a channel of
//! MQTT payloads), its stdout and stderr (writers into the outbox, shown to the
//! program as a character device so wasi-libc line-buffers them), and a scheduler
//! whose sleeps end when the module must stop.
//!
//! Not for: running the module (`runner.rs`) or WASI calls themselves (`wasmi_wasi`).

use std::any::Any;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use wasmi_wasi::wasi_common::file::{FdFlags, FileType};
use wasmi_wasi::wasi_common::sched::{Poll, WasiSched};
use wasmi_wasi::wasi_common::{Error, ErrorExt, WasiFile};

use crate::launcher::StopFlag;

/// Longest a blocking host call waits before looking at the stop flag again.
const WAKE_INTERVAL: Duration = Duration::from_millis(50);

/// Why a module is being interrupted from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interruption {
    Stopped,
    TimeLimit,
}

/// What host calls and the fuel loop check to know whether the module must stop.
pub(super) struct Interrupt {
    stop: StopFlag,
    deadline: OnceLock<Instant>,
}

impl Interrupt {
    pub(super) fn new(stop: StopFlag) -> Self {
        Interrupt {
            stop,
            deadline: OnceLock::new(),
        }
    }

    /// Arms the time limit; called once, when the program starts.
    pub(super) fn set_deadline(&self, deadline: Instant) {
        let _ = self.deadline.set(deadline);
    }

    pub(super) fn check(&self) -> Option<Interruption> {
        if self.stop.is_raised() {
            return Some(Interruption::Stopped);
        }
        match self.deadline.get() {
            Some(deadline) if Instant::now() >= *deadline => Some(Interruption::TimeLimit),
            _ => None,
        }
    }

    /// A trap that ends the program's current host call at once; the runner reports
    /// the interruption, not the trap.
    fn trap(&self) -> Error {
        Error::trap(io::Error::other("module interrupted by the runtime").into())
    }

    /// Sleeps for `duration`, or less when the module must stop (then a trap).
    fn sleep(&self, duration: Duration) -> Result<(), Error> {
        let until = Instant::now() + duration;
        loop {
            if self.check().is_some() {
                return Err(self.trap());
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(WAKE_INTERVAL));
        }
    }
}

/// The module's stdin: blocks for the next payload, returns end-of-file once the
/// channel is disconnected, and traps when the module must stop.
pub(super) struct ChannelStdin {
    state: Mutex<StdinState>,
    interrupt: Arc<Interrupt>,
}

struct StdinState {
    receiver: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    offset: usize,
    closed: bool,
}

impl ChannelStdin {
    pub(super) fn new(receiver: Receiver<Vec<u8>>, interrupt: Arc<Interrupt>) -> Self {
        ChannelStdin {
            state: Mutex::new(StdinState {
                receiver,
                pending: Vec::new(),
                offset: 0,
                closed: false,
            }),
            interrupt,
        }
    }

    fn read(&self, bufs: &mut [io::IoSliceMut<'_>]) -> Result<u64, Error> {
        let mut state = self.state.lock().map_err(|_| Error::io())?;
        loop {
            if self.interrupt.check().is_some() {
                return Err(self.interrupt.trap());
            }
            if state.offset < state.pending.len() {
                return Ok(state.copy_into(bufs));
            }
            if state.closed {
                return Ok(0);
            }
            match state.receiver.recv_timeout(WAKE_INTERVAL) {
                Ok(data) => {
                    state.pending = data;
                    state.offset = 0;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => state.closed = true,
            }
        }
    }
}

impl StdinState {
    fn copy_into(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> u64 {
        let mut copied = 0;
        for buf in bufs.iter_mut() {
            let available = &self.pending[self.offset..];
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            self.offset += n;
            copied += n;
            if self.offset == self.pending.len() {
                break;
            }
        }
        copied as u64
    }
}

#[async_trait::async_trait]
impl WasiFile for ChannelStdin {
    fn as_any(&self) -> &dyn Any {
        self
    }
    async fn get_filetype(&self) -> Result<FileType, Error> {
        Ok(FileType::Pipe)
    }
    async fn read_vectored<'a>(&self, bufs: &mut [io::IoSliceMut<'a>]) -> Result<u64, Error> {
        self.read(bufs)
    }
}

/// The module's stdout or stderr: every write goes straight to the writer. Presented as a
/// character device (a terminal to wasi-libc), so C programs flush at each newline.
pub(super) struct OutputFile {
    writer: SharedWriter,
}

/// A writer shared between the WASI context and the runner (which flushes it).
pub(super) type SharedWriter = Arc<Mutex<dyn Write + Send + Sync>>;

impl OutputFile {
    pub(super) fn new(writer: SharedWriter) -> Self {
        OutputFile { writer }
    }
}

#[async_trait::async_trait]
impl WasiFile for OutputFile {
    fn as_any(&self) -> &dyn Any {
        self
    }
    async fn get_filetype(&self) -> Result<FileType, Error> {
        Ok(FileType::CharacterDevice)
    }
    fn isatty(&self) -> bool {
        true
    }
    async fn get_fdflags(&self) -> Result<FdFlags, Error> {
        Ok(FdFlags::APPEND)
    }
    async fn write_vectored<'a>(&self, bufs: &[io::IoSlice<'a>]) -> Result<u64, Error> {
        let mut writer = self.writer.lock().map_err(|_| Error::io())?;
        let mut written = 0u64;
        for buf in bufs {
            writer.write_all(buf).map_err(|_| Error::io())?;
            written += buf.len() as u64;
        }
        Ok(written)
    }
}

/// WASI scheduler whose sleeps and timer polls end early (with a trap) when the
/// module must stop; polls on files behave as in `wasi_common`'s own scheduler.
pub(super) struct InterruptibleSched {
    interrupt: Arc<Interrupt>,
}

impl InterruptibleSched {
    pub(super) fn new(interrupt: Arc<Interrupt>) -> Self {
        InterruptibleSched { interrupt }
    }
}

#[async_trait::async_trait]
impl WasiSched for InterruptibleSched {
    async fn poll_oneoff<'a>(&self, poll: &mut Poll<'a>) -> Result<(), Error> {
        if poll.is_empty() {
            return Ok(());
        }
        if poll.rw_subscriptions().next().is_some() {
            return wasmi_wasi::sync::sched::poll_oneoff(poll).await;
        }
        let wait = poll
            .earliest_clock_deadline()
            .and_then(|clock| clock.duration_until())
            .unwrap_or(Duration::ZERO);
        self.interrupt.sleep(wait)?;
        // Clocks of finer precision than the sleep may still read just short of the
        // deadline; wait out the remainder so the subscription reports as fired.
        while let Some(rest) = poll
            .earliest_clock_deadline()
            .and_then(|clock| clock.duration_until())
            .filter(|rest| !rest.is_zero())
        {
            self.interrupt.sleep(rest)?;
        }
        Ok(())
    }

    async fn sched_yield(&self) -> Result<(), Error> {
        std::thread::yield_now();
        Ok(())
    }

    async fn sleep(&self, duration: Duration) -> Result<(), Error> {
        self.interrupt.sleep(duration)
    }
}
