//! The outbox: everything the runtime wants published waits here for the mqtt
//! publisher. Control messages (responses, registration, keepalives, errors) are never
//! dropped and go first; module output is queued per module, batched when it piles
//! up, and dropped with a counted "suppressed N bytes" notice past a byte bound, so a
//! noisy module can neither stall the control plane nor grow memory without bound.
//!
//! Not for: talking to the network (`mqtt.rs`) or deciding topics (`protocol`).
//!
//! Module writers only take a short lock and never wait for the network. The
//! publisher learns about new work through a one-slot "work ready" channel: every
//! producer drops a token into it after queueing, so the publisher sleeps in a
//! blocking receive (or a `select!`) instead of polling.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::config::OutputSettings;
use crate::protocol::Message;

/// How module output is put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputEncoding {
    /// The bytes as written (silverline, arts).
    Raw,
    /// A JSON string of the text (arena).
    JsonString,
}

/// Producer side; cheap to clone, shared by the supervisor and module threads.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

/// Consumer side, owned by the mqtt publisher.
pub struct OutboxReceiver {
    inner: Arc<Inner>,
    wakeups: Receiver<()>,
    /// Round-robin position among the module queues.
    cursor: usize,
}

/// One publication taken from the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub message: Message,
    /// Control messages (and a module's closing message) must be delivered (QoS 1);
    /// module output may be sent at most once.
    pub control: bool,
}

/// Creates a connected outbox pair.
pub fn outbox(limits: OutputSettings, encoding: OutputEncoding) -> (Outbox, OutboxReceiver) {
    let (wake, wakeups) = crossbeam_channel::bounded(1);
    let inner = Arc::new(Inner {
        limits,
        encoding,
        wake,
        sealed: Arc::new(AtomicBool::new(false)),
        control: Mutex::new(VecDeque::new()),
        status: Mutex::new(None),
        modules: Mutex::new(Vec::new()),
        flushed: Condvar::new(),
    });
    let receiver = OutboxReceiver {
        inner: inner.clone(),
        wakeups,
        cursor: 0,
    };
    (Outbox { inner }, receiver)
}

struct Inner {
    limits: OutputSettings,
    encoding: OutputEncoding,
    wake: Sender<()>,
    /// Set at shutdown: module output written after this is dropped.
    sealed: Arc<AtomicBool>,
    control: Mutex<VecDeque<Message>>,
    /// The newest status message (keepalive); each replaces the one before.
    status: Mutex<Option<Message>>,
    modules: Mutex<Vec<Arc<ModuleQueue>>>,
    /// Notified when the last module queue is gone (all output and exits taken).
    flushed: Condvar,
}

impl Outbox {
    /// Queue a control message; never dropped, published before pending output.
    pub fn control(&self, message: Message) {
        lock(&self.inner.control).push_back(message);
        wake(&self.inner.wake);
    }

    /// Queue a status message (a keepalive): only the newest one waits, it goes out
    /// after control messages and before output, at most once (QoS 0): one that a
    /// broken connection swallowed is never sent late, after newer news.
    pub fn status(&self, message: Message) {
        *lock(&self.inner.status) = Some(message);
        wake(&self.inner.wake);
    }

    /// Wait until every module's output and closing message has been taken for
    /// publishing, at most `timeout`; false when some is still queued then (shutdown:
    /// the unregistration follows the exits unless a backlog would crowd it out).
    pub fn wait_output_taken(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut modules = lock(&self.inner.modules);
        while !modules.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            modules = self
                .inner
                .flushed
                .wait_timeout(modules, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        true
    }

    /// Open the output queue of one module, with its stdout and stderr topics.
    pub fn module_output(&self, stdout_topic: String, stderr_topic: String) -> ModuleOutput {
        self.open_module_output([stdout_topic, stderr_topic], false)
    }

    /// A module output that goes to the runtime's log instead of MQTT
    /// (`launcher.pipe_stdout: false`); `labels` name the streams in log lines. The
    /// closing message is still published.
    pub fn logged_module_output(&self, stdout_label: String, stderr_label: String) -> ModuleOutput {
        self.open_module_output([stdout_label, stderr_label], true)
    }

    fn open_module_output(&self, topics: [String; 2], log_only: bool) -> ModuleOutput {
        let queue = Arc::new(ModuleQueue {
            topics,
            log_only,
            limits: self.inner.limits.clone(),
            wake: self.inner.wake.clone(),
            sealed: self.inner.sealed.clone(),
            state: Mutex::new(ModuleState::default()),
        });
        lock(&self.inner.modules).push(queue.clone());
        ModuleOutput { queue }
    }
}

impl OutboxReceiver {
    /// Receives a token whenever something was queued; wait on it (alone or in a
    /// `select!`) when `take` returns `None`.
    pub fn wakeups(&self) -> &Receiver<()> {
        &self.wakeups
    }

    /// The next publication: control messages first, then the newest status message,
    /// then module output round-robin over modules (consecutive lines of one stream
    /// joined up to `max_batch_bytes`),
    /// a module's closing message after all its output. With `output == false` only
    /// control messages are taken.
    pub fn take(&mut self, output: bool) -> Option<OutboxItem> {
        if let Some(message) = lock(&self.inner.control).pop_front() {
            return Some(OutboxItem {
                message,
                control: true,
            });
        }
        if !output {
            return None;
        }
        if let Some(message) = lock(&self.inner.status).take() {
            return Some(OutboxItem {
                message,
                control: false,
            });
        }
        self.take_module_item()
    }

    /// Drop module output written from now on (shutdown: what is queued stays).
    pub fn seal_output(&self) {
        self.inner.sealed.store(true, Ordering::SeqCst);
    }

    fn take_module_item(&mut self) -> Option<OutboxItem> {
        let mut modules = lock(&self.inner.modules);
        let mut visited = 0;
        while visited < modules.len() {
            let index = self.cursor % modules.len();
            let queue = modules[index].clone();
            // The registry holds the only reference: every writer is gone, so what
            // they left half-written will never be completed.
            let abandoned = Arc::strong_count(&queue) == 2;
            let mut state = lock(&queue.state);
            if abandoned && !state.closed {
                queue.close_locked(&mut state, None);
            }

            if let Some(item) = queue.take_batch(&mut state, self.inner.encoding) {
                self.cursor = index + 1;
                return Some(item);
            }

            if state.closed {
                drop(state);
                modules.remove(index);
                if modules.is_empty() {
                    self.inner.flushed.notify_all();
                }
                continue;
            }
            self.cursor = index + 1;
            visited += 1;
        }
        None
    }
}

/// One module's output queue. Clones share the queue. Stdout and stderr keep their
/// relative order.
#[derive(Clone)]
pub struct ModuleOutput {
    queue: Arc<ModuleQueue>,
}

impl ModuleOutput {
    /// Writer for the module's stdout (`std::io::Write + Send + Sync`); never blocks.
    pub fn stdout(&self) -> OutputWriter {
        OutputWriter {
            queue: self.queue.clone(),
            stream: STDOUT,
        }
    }

    pub fn stderr(&self) -> OutputWriter {
        OutputWriter {
            queue: self.queue.clone(),
            stream: STDERR,
        }
    }

    /// Flush partial lines and queue `last` (the exit notice) after every byte of
    /// output the module wrote, so the notice never overtakes its output.
    pub fn close_with(&self, last: Message) {
        self.close_queue(Some(last));
    }

    /// Flush partial lines; nothing more will be written.
    pub fn close(&self) {
        self.close_queue(None);
    }

    fn close_queue(&self, last: Option<Message>) {
        let mut state = lock(&self.queue.state);
        self.queue.close_locked(&mut state, last);
        drop(state);
        wake(&self.queue.wake);
    }
}

/// Line-splitting writer into a module's queue.
#[derive(Clone)]
pub struct OutputWriter {
    queue: Arc<ModuleQueue>,
    stream: usize,
}

impl std::io::Write for OutputWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.queue.write(self.stream, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut state = lock(&self.queue.state);
        let queued = self.queue.flush_partial(&mut state, self.stream);
        drop(state);
        if queued {
            wake(&self.queue.wake);
        }
        Ok(())
    }
}

const STDOUT: usize = 0;
const STDERR: usize = 1;

struct ModuleQueue {
    /// Indexed by `STDOUT` / `STDERR`.
    topics: [String; 2],
    /// Lines go to the log, not the queue.
    log_only: bool,
    limits: OutputSettings,
    wake: Sender<()>,
    sealed: Arc<AtomicBool>,
    state: Mutex<ModuleState>,
}

#[derive(Default)]
struct ModuleState {
    /// Complete lines (or line pieces) waiting, both streams in write order.
    lines: VecDeque<(usize, Vec<u8>)>,
    /// Bytes in `lines`.
    buffered: usize,
    /// The unfinished line of each stream (shorter than `max_line_bytes`).
    partial: [Vec<u8>; 2],
    /// Bytes dropped per stream since the last notice.
    suppressed: [u64; 2],
    /// Published after every line; taken once.
    last: Option<Message>,
    closed: bool,
}

impl ModuleQueue {
    fn write(&self, stream: usize, buf: &[u8]) {
        if self.sealed.load(Ordering::SeqCst) {
            return;
        }
        let mut state = lock(&self.state);
        if state.closed {
            log::debug!(
                "output on '{}' after the module closed: {} bytes dropped",
                self.topics[stream],
                buf.len()
            );
            return;
        }

        let max_line = self.limits.max_line_bytes.max(1);
        let mut rest = buf;
        let mut queued = false;
        while !rest.is_empty() {
            let room = max_line - state.partial[stream].len();
            let window = &rest[..rest.len().min(room)];
            let (taken, complete) = match window.iter().position(|&b| b == b'\n') {
                Some(newline) => (newline + 1, true),
                None => (window.len(), window.len() == room),
            };
            state.partial[stream].extend_from_slice(&window[..taken]);
            rest = &rest[taken..];
            if complete {
                let mut line = std::mem::take(&mut state.partial[stream]);
                if !line.ends_with(b"\n") {
                    // A long line is cut between characters, so that each piece reads
                    // as text (arena publishes pieces as JSON strings).
                    let tail = incomplete_utf8_tail(&line);
                    if tail < line.len() {
                        state.partial[stream] = line.split_off(line.len() - tail);
                    }
                }
                queued |= self.push_line(&mut state, stream, line);
            }
        }

        drop(state);
        if queued {
            wake(&self.wake);
        }
    }

    /// Queue the unfinished line of `stream`, if any; true when something was queued.
    fn flush_partial(&self, state: &mut ModuleState, stream: usize) -> bool {
        if state.partial[stream].is_empty() {
            return false;
        }
        let line = std::mem::take(&mut state.partial[stream]);
        self.push_line(state, stream, line)
    }

    /// Queue one line within the byte bound, or drop and count it.
    fn push_line(&self, state: &mut ModuleState, stream: usize, line: Vec<u8>) -> bool {
        if self.log_only {
            let text = String::from_utf8_lossy(&line);
            log::info!("{}: {}", self.topics[stream], text.trim_end_matches('\n'));
            return false;
        }
        if state.buffered + line.len() > self.limits.max_buffered_bytes {
            if state.suppressed[stream] == 0 {
                log::warn!(
                    "output on '{}' is arriving faster than it is published: dropping it",
                    self.topics[stream]
                );
            }
            state.suppressed[stream] += line.len() as u64;
            return false;
        }

        self.push_notice(state, stream);
        state.buffered += line.len();
        state.lines.push_back((stream, line));
        true
    }

    /// Queue the "suppressed N bytes" notice of `stream` when output was dropped.
    fn push_notice(&self, state: &mut ModuleState, stream: usize) {
        let count = std::mem::take(&mut state.suppressed[stream]);
        if count == 0 {
            return;
        }
        log::warn!(
            "output on '{}': suppressed {count} bytes",
            self.topics[stream]
        );
        let notice = format!("[sideload] suppressed {count} bytes of output\n").into_bytes();
        state.buffered += notice.len();
        state.lines.push_back((stream, notice));
    }

    fn close_locked(&self, state: &mut ModuleState, last: Option<Message>) {
        if state.closed {
            return;
        }
        for stream in [STDOUT, STDERR] {
            let line = std::mem::take(&mut state.partial[stream]);
            if !line.is_empty() {
                // The final words of a module are worth a small overshoot of the bound.
                state.buffered += line.len();
                state.lines.push_back((stream, line));
            }
            self.push_notice(state, stream);
        }
        state.last = last;
        state.closed = true;
    }

    /// The oldest line joined with the following lines of the same stream, up to
    /// `max_batch_bytes`; after the last line, the closing message.
    fn take_batch(&self, state: &mut ModuleState, encoding: OutputEncoding) -> Option<OutboxItem> {
        let Some((stream, mut batch)) = state.lines.pop_front() else {
            return state.last.take().map(|message| OutboxItem {
                message,
                control: true,
            });
        };
        while let Some((next_stream, next)) = state.lines.front() {
            if *next_stream != stream || batch.len() + next.len() > self.limits.max_batch_bytes {
                break;
            }
            batch.extend_from_slice(next);
            state.lines.pop_front();
        }
        state.buffered -= batch.len();

        let payload = match encoding {
            OutputEncoding::Raw => batch,
            OutputEncoding::JsonString => json_string(&batch),
        };
        Some(OutboxItem {
            message: Message {
                topic: self.topics[stream].clone(),
                payload,
            },
            control: false,
        })
    }
}

/// How many bytes at the end of `bytes` begin a UTF-8 character that is not complete
/// (0 for ASCII, complete characters and bytes that are not UTF-8 at all).
fn incomplete_utf8_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(4) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let length = match byte {
            0xF0..=0xF4 => 4,
            0xE0..=0xEF => 3,
            0xC2..=0xDF => 2,
            _ => 1,
        };
        return if length > back { back } else { 0 };
    }
    0
}

fn json_string(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    // Serialising a string cannot fail; the fallback keeps the type honest.
    serde_json::to_vec(&text).unwrap_or_else(|_| b"\"\"".to_vec())
}

fn wake(sender: &Sender<()>) {
    // A full slot already means "work ready"; a gone receiver means nobody publishes.
    let _ = sender.try_send(());
}

/// Locks, recovering the data if a thread panicked while holding the lock: queues
/// stay consistent between statements, and output must keep flowing.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn limits(line: usize, batch: usize, buffered: usize) -> OutputSettings {
        OutputSettings {
            max_line_bytes: line,
            max_batch_bytes: batch,
            max_buffered_bytes: buffered,
        }
    }

    fn message(topic: &str, payload: &str) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.as_bytes().to_vec(),
        }
    }

    fn drain(receiver: &mut OutboxReceiver) -> Vec<(String, String, bool)> {
        std::iter::from_fn(|| receiver.take(true))
            .map(|item| {
                (
                    item.message.topic,
                    String::from_utf8(item.message.payload).unwrap(),
                    item.control,
                )
            })
            .collect()
    }

    fn one_line_batches() -> OutputSettings {
        limits(1024, 1, 1 << 20)
    }

    #[test]
    fn control_messages_go_before_pending_output() {
        let (outbox, mut receiver) = outbox(one_line_batches(), OutputEncoding::Raw);
        let module = outbox.module_output("out".into(), "err".into());
        module.stdout().write_all(b"hello\n").unwrap();
        outbox.control(message("reg", "{}"));

        let items = drain(&mut receiver);

        assert_eq!(
            items,
            vec![
                ("reg".into(), "{}".into(), true),
                ("out".into(), "hello\n".into(), false)
            ]
        );
    }

    #[test]
    fn waiting_for_output_ends_once_every_module_s_output_and_exit_is_taken() {
        let (outbox, mut receiver) = outbox(one_line_batches(), OutputEncoding::Raw);
        assert!(outbox.wait_output_taken(Duration::ZERO), "nothing queued");
        let module = outbox.module_output("out".into(), "err".into());
        module.stdout().write_all(b"a\n").unwrap();
        module.close_with(message("exited", "1"));
        assert!(!outbox.wait_output_taken(Duration::from_millis(10)));

        let waiter = {
            let outbox = outbox.clone();
            std::thread::spawn(move || outbox.wait_output_taken(Duration::from_secs(30)))
        };
        let items = drain(&mut receiver);

        assert!(waiter.join().unwrap());
        assert_eq!(
            items,
            vec![
                ("out".into(), "a\n".into(), false),
                ("exited".into(), "1".into(), true)
            ]
        );
    }

    #[test]
    fn only_the_newest_status_waits_and_it_goes_out_at_most_once() {
        let (outbox, mut receiver) = outbox(one_line_batches(), OutputEncoding::Raw);
        let module = outbox.module_output("out".into(), "err".into());
        module.stdout().write_all(b"hello\n").unwrap();
        outbox.status(message("ka", "1"));
        outbox.status(message("ka", "2"));
        outbox.control(message("reg", "{}"));

        let items = drain(&mut receiver);

        assert_eq!(
            items,
            vec![
                ("reg".into(), "{}".into(), true),
                ("ka".into(), "2".into(), false),
                ("out".into(), "hello\n".into(), false)
            ]
        );
    }

    #[test]
    fn logged_output_is_not_published_but_the_exit_notice_is() {
        let (outbox, mut receiver) = outbox(one_line_batches(), OutputEncoding::Raw);
        let module = outbox.logged_module_output("stdout".into(), "stderr".into());
        module.stdout().write_all(b"hello\n").unwrap();
        module.close_with(message("exited", "{}"));

        let items = drain(&mut receiver);

        assert_eq!(items, vec![("exited".into(), "{}".into(), true)]);
    }

    #[test]
    fn stdout_and_stderr_keep_their_relative_order() {
        let (outbox, mut receiver) = outbox(limits(1024, 4096, 1 << 20), OutputEncoding::Raw);
        let module = outbox.module_output("out".into(), "err".into());
        let (mut out, mut err) = (module.stdout(), module.stderr());
        out.write_all(b"1\n").unwrap();
        err.write_all(b"2\n").unwrap();
        out.write_all(b"3\n4\n").unwrap();

        let items = drain(&mut receiver);

        let topics: Vec<_> = items
            .iter()
            .map(|(t, p, _)| (t.as_str(), p.as_str()))
            .collect();
        assert_eq!(
            topics,
            vec![("out", "1\n"), ("err", "2\n"), ("out", "3\n4\n")]
        );
    }

    #[test]
    fn queued_lines_of_one_stream_are_batched_up_to_the_limit() {
        let (outbox, mut receiver) = outbox(limits(1024, 10, 1 << 20), OutputEncoding::Raw);
        let mut out = outbox.module_output("out".into(), "err".into()).stdout();
        for line in ["aaaa\n", "bbbb\n", "cccc\n"] {
            out.write_all(line.as_bytes()).unwrap();
        }

        let payloads: Vec<_> = drain(&mut receiver)
            .into_iter()
            .map(|(_, p, _)| p)
            .collect();

        assert_eq!(payloads, vec!["aaaa\nbbbb\n", "cccc\n"]);
    }

    #[test]
    fn a_line_taken_as_soon_as_written_is_its_own_message() {
        let (outbox, mut receiver) = outbox(limits(1024, 4096, 1 << 20), OutputEncoding::Raw);
        let mut out = outbox.module_output("out".into(), "err".into()).stdout();

        out.write_all(b"one\n").unwrap();
        let first = receiver.take(true).unwrap();
        out.write_all(b"two\n").unwrap();
        let second = receiver.take(true).unwrap();

        assert_eq!(first.message.payload, b"one\n");
        assert_eq!(second.message.payload, b"two\n");
    }

    #[test]
    fn long_lines_are_split_and_partial_lines_wait_for_newline_or_flush() {
        let (outbox, mut receiver) = outbox(limits(4, 1, 1 << 20), OutputEncoding::Raw);
        let mut out = outbox.module_output("out".into(), "err".into()).stdout();

        out.write_all(b"abcdefghij").unwrap();
        let before_flush: Vec<_> = drain(&mut receiver).into_iter().map(|i| i.1).collect();
        out.write_all(b"\nxy").unwrap();
        let after_newline: Vec<_> = drain(&mut receiver).into_iter().map(|i| i.1).collect();
        out.flush().unwrap();
        let after_flush: Vec<_> = drain(&mut receiver).into_iter().map(|i| i.1).collect();

        assert_eq!(before_flush, vec!["abcd", "efgh"]);
        assert_eq!(after_newline, vec!["ij\n"]);
        assert_eq!(after_flush, vec!["xy"]);
    }

    #[test]
    fn output_beyond_the_bound_is_dropped_and_counted_in_a_notice() {
        let (outbox, mut receiver) = outbox(limits(1024, 1, 10), OutputEncoding::Raw);
        let mut out = outbox.module_output("out".into(), "err".into()).stdout();
        out.write_all(b"12345678\n").unwrap();
        out.write_all(b"dropped\n").unwrap();
        out.write_all(b"gone\n").unwrap();
        let first = drain(&mut receiver);

        out.write_all(b"back\n").unwrap();
        let second: Vec<_> = drain(&mut receiver).into_iter().map(|i| i.1).collect();

        assert_eq!(first.len(), 1);
        assert_eq!(
            second,
            vec!["[sideload] suppressed 13 bytes of output\n", "back\n"]
        );
    }

    #[test]
    fn close_with_flushes_partial_lines_and_queues_last_behind_all_output() {
        let (outbox, mut receiver) = outbox(one_line_batches(), OutputEncoding::Raw);
        let module = outbox.module_output("out".into(), "err".into());
        module.stdout().write_all(b"line\npartial").unwrap();
        module.stderr().write_all(b"oops").unwrap();
        module.close_with(message("ctl", "exited"));
        outbox.control(message("ka", "keepalive"));

        let items = drain(&mut receiver);

        assert_eq!(
            items,
            vec![
                ("ka".into(), "keepalive".into(), true),
                ("out".into(), "line\n".into(), false),
                ("out".into(), "partial".into(), false),
                ("err".into(), "oops".into(), false),
                ("ctl".into(), "exited".into(), true),
            ]
        );
    }

    #[test]
    fn closing_message_is_kept_even_when_output_was_suppressed() {
        let (outbox, mut receiver) = outbox(limits(1024, 1, 4), OutputEncoding::Raw);
        let module = outbox.module_output("out".into(), "err".into());
        module.stdout().write_all(b"too long\n").unwrap();
        module.close_with(message("ctl", "exited"));

        let items = drain(&mut receiver);

        assert_eq!(
            items,
            vec![
                (
                    "out".into(),
                    "[sideload] suppressed 9 bytes of output\n".into(),
                    false
                ),
                ("ctl".into(), "exited".into(), true),
            ]
        );
    }

    #[test]
    fn modules_take_turns() {
        let (outbox, mut receiver) = outbox(one_line_batches(), OutputEncoding::Raw);
        let mut a = outbox.module_output("a".into(), "a/err".into()).stdout();
        let mut b = outbox.module_output("b".into(), "b/err".into()).stdout();
        a.write_all(b"1\n2\n3\n").unwrap();
        b.write_all(b"1\n2\n").unwrap();

        let topics: Vec<_> = drain(&mut receiver).into_iter().map(|i| i.0).collect();

        assert_eq!(topics, vec!["a", "b", "a", "b", "a"]);
    }

    #[test]
    fn json_encoding_publishes_a_json_string_of_the_text() {
        let (outbox, mut receiver) = outbox(one_line_batches(), OutputEncoding::JsonString);
        let mut out = outbox.module_output("out".into(), "err".into()).stdout();
        out.write_all(b"say \"hi\"\xff\n").unwrap();

        let payload = receiver.take(true).unwrap().message.payload;

        assert_eq!(
            String::from_utf8(payload).unwrap(),
            "\"say \\\"hi\\\"\u{fffd}\\n\""
        );
    }

    #[test]
    fn long_lines_are_cut_between_characters() {
        let (outbox, mut receiver) = outbox(limits(8, 1, 1 << 20), OutputEncoding::JsonString);
        let mut out = outbox.module_output("out".into(), "err".into()).stdout();
        // 'é' is two bytes and '€' three: byte 8 falls inside each of them.
        out.write_all("abcdefgé|1234€|\n".as_bytes()).unwrap();

        let pieces: Vec<String> = drain(&mut receiver)
            .into_iter()
            .map(|(_, payload, _)| serde_json::from_str(&payload).unwrap())
            .collect();

        assert_eq!(pieces, ["abcdefg", "é|1234", "€|\n"]);
        assert_eq!(incomplete_utf8_tail(b"\xff\xfe"), 0);
        assert_eq!(incomplete_utf8_tail("ab€".as_bytes()), 0);
        assert_eq!(incomplete_utf8_tail(&"ab€".as_bytes()[..4]), 2);
    }

    #[test]
    fn writes_and_control_messages_wake_the_publisher() {
        let (outbox, receiver) = outbox(one_line_batches(), OutputEncoding::Raw);
        let mut out = outbox.module_output("out".into(), "err".into()).stdout();

        out.write_all(b"partial").unwrap();
        let woken_by_partial = receiver.wakeups().try_recv().is_ok();
        out.write_all(b"\n").unwrap();
        let woken_by_line = receiver.wakeups().try_recv().is_ok();
        outbox.control(message("ctl", "x"));
        let woken_by_control = receiver.wakeups().try_recv().is_ok();

        assert!(!woken_by_partial);
        assert!(woken_by_line);
        assert!(woken_by_control);
    }

    #[test]
    fn dropped_writers_leave_their_partial_line_behind_for_publishing() {
        let (outbox, mut receiver) = outbox(one_line_batches(), OutputEncoding::Raw);
        let module = outbox.module_output("out".into(), "err".into());
        module.stdout().write_all(b"tail").unwrap();
        drop(module);

        let items: Vec<_> = drain(&mut receiver).into_iter().map(|i| i.1).collect();

        assert_eq!(items, vec!["tail"]);
        assert!(receiver.take(true).is_none());
    }

    #[test]
    fn output_after_sealing_is_dropped() {
        let (outbox, mut receiver) = outbox(one_line_batches(), OutputEncoding::Raw);
        let mut out = outbox.module_output("out".into(), "err".into()).stdout();
        out.write_all(b"kept\n").unwrap();
        receiver.seal_output();
        out.write_all(b"late\n").unwrap();

        let items: Vec<_> = drain(&mut receiver).into_iter().map(|i| i.1).collect();

        assert_eq!(items, vec!["kept\n"]);
    }
}
