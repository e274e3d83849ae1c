//! The program store as a Python module's create sees it, through the real runtime
//! and engine: a folder served by `python3 -m http.server`, a store page whose
//! entries try to leave the work folder, a link out of a `file://` store, a file over
//! the size bound, a checksum that does not match. Each bad store is a clear error
//! for that module, leaves no file and no container, and the runtime goes on.
//!
//! Not for: the listing parser and fetch bounds one by one (unit tests in
//! `src/program_files/`).

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::engine::{assert_no_containers_left, with_python, Janitor};
use common::{error_text, start_registered_runtime, with_programs, Fixture, RuntimeOptions};
use serde_json::json;

const START: Duration = Duration::from_secs(30);

fn no_args() -> serde_json::Value {
    json!({"argv": [], "env": []})
}

/// A runtime and the guard that removes its containers.
fn runtime(options: RuntimeOptions) -> (Fixture, Janitor) {
    let fx = start_registered_runtime(options);
    let janitor = Janitor {
        runtime_uuid: fx.rt.uuid.clone(),
        host: None,
    };
    (fx, janitor)
}

/// Create `file`, expect the error answering it; nothing of the module is left.
fn create_is_refused(fx: &mut Fixture, file: &str) -> String {
    let m = fx.create(file, no_args());
    let err = fx.expect_error(START);
    assert_eq!(err["object_id"], m.object_id.as_str(), "{err}");
    fx.assert_no_ok_so_far(&m.object_id);
    let files = fx.rt.leftover_module_files(Duration::from_secs(2));
    assert!(files.is_empty(), "files left: {files:?}");
    assert_no_containers_left(&fx.rt.uuid);
    error_text(&err)
}

/// `python3 -m http.server` over a folder, on a free port.
struct HttpServer {
    child: Child,
    port: String,
}

impl HttpServer {
    fn serve(folder: &std::path::Path) -> HttpServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(folder)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("server stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server's first line");
        // "Serving HTTP on 127.0.0.1 port 43125 (http://127.0.0.1:43125/) ..."
        let port = line
            .split_whitespace()
            .nth(5)
            .unwrap_or_default()
            .to_string();
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_python_module_runs_from_a_folder_served_by_python_http_server() {
    let store = tempfile::tempdir().expect("store");
    let program = store.path().join("apps/folder");
    std::fs::create_dir_all(program.join("lib")).unwrap();
    std::fs::create_dir_all(program.join("data")).unwrap();
    let source =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/python/folder");
    for file in [
        "folder.py",
        "lib/__init__.py",
        "lib/helper.py",
        "data/greeting.txt",
    ] {
        std::fs::copy(source.join(file), program.join(file)).unwrap();
    }
    let server = HttpServer::serve(store.path());
    let url = format!("http://127.0.0.1:{}/", server.port);
    let (mut fx, _janitor) =
        runtime(RuntimeOptions::default().settings(json!({"repository": {"url": url}})));

    let m = fx.create("apps/folder/folder.py", no_args());
    fx.expect_ok(&m.object_id, START);
    fx.expect_stdout(&m.uuid, "helper says hello from a sub-folder\n", START);
    fx.expect_exited(&m.uuid, START);
    assert_no_containers_left(&fx.rt.uuid);
}

/// A store whose page for `/evil/` lists `entry` beside a harmless program.
fn evil_store(entry: &'static str) -> (String, thread::JoinHandle<()>, Arc<tiny_http::Server>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("http server"));
    let port = server.server_addr().to_ip().expect("ip address").port();
    let serving = server.clone();
    let handle = thread::spawn(move || {
        for request in serving.incoming_requests() {
            let response = match request.url() {
                "/evil/" => {
                    let page = format!(
                        "<html><body><a href=\"main.py\">main.py</a>\n\
                         <a href=\"{entry}\">{entry}</a></body></html>"
                    );
                    tiny_http::Response::from_string(page).with_header(
                        "Content-Type: text/html"
                            .parse::<tiny_http::Header>()
                            .expect("header"),
                    )
                }
                "/evil/main.py" => tiny_http::Response::from_string("print('hi')\n"),
                _ => tiny_http::Response::from_string("secret\n"),
            };
            let _ = request.respond(response);
        }
    });
    (format!("http://127.0.0.1:{port}/"), handle, server)
}

#[test]
fn store_entries_that_leave_the_work_folder_are_refused() {
    for entry in [
        "%2e%2e%2f%2e%2e%2fescaped.py",
        "..%2fescaped.py",
        "a%5c..%5cb.py",
    ] {
        let (url, handle, server) = evil_store(entry);
        let (mut fx, _janitor) =
            runtime(with_programs().settings(json!({"repository": {"url": url}})));
        let text = create_is_refused(&mut fx, "evil/main.py");
        assert!(
            text.contains("escaped") || text.contains("b.py"),
            "{entry}: {text}"
        );
        let escaped = fx.rt.state_dir.join("escaped.py");
        assert!(
            !escaped.exists(),
            "{entry}: a file escaped to '{}'",
            escaped.display()
        );
        server.unblock();
        let _ = handle.join();
    }
}

#[test]
fn a_link_out_of_a_file_store_is_refused() {
    let options = with_python(with_programs(), &["echo"]);
    let (mut fx, _janitor) = runtime(options);
    let program = fx.rt.store.join("py/echo");
    std::os::unix::fs::symlink("/etc/passwd", program.join("passwd")).expect("symlink");

    let text = create_is_refused(&mut fx, "py/echo/echo.py");
    assert!(text.contains("passwd"), "{text}");
    fx.assert_hello_still_works();
}

#[test]
fn a_file_over_the_size_bound_is_refused_naming_it() {
    let options = with_python(with_programs(), &["echo"])
        .program("py/echo/big.bin", vec![7u8; 5000])
        .settings(json!({"repository": {"max_file_bytes": 4096}}));
    let (mut fx, _janitor) = runtime(options);

    let text = create_is_refused(&mut fx, "py/echo/echo.py");
    assert!(text.contains("big.bin"), "{text}");
    assert!(text.contains("4096 bytes"), "the limit: {text}");
    fx.assert_hello_still_works();
}

#[test]
fn a_checksum_that_does_not_match_is_refused() {
    let options = with_python(with_programs(), &["echo"]);
    let (mut fx, _janitor) = runtime(options);
    let mut create = common::create_request(
        &common::new_uuid(),
        &common::new_uuid(),
        "summed",
        "py/echo/echo.py",
        no_args(),
    );
    create["data"]["sha256"] = json!("0".repeat(64));
    let object_id = create["object_id"].as_str().unwrap().to_string();
    fx.send(&create);

    let err = fx.expect_error(START);
    assert_eq!(err["object_id"], object_id.as_str(), "{err}");
    let text = error_text(&err);
    assert!(
        text.contains("echo.py") && text.contains("sha256"),
        "{text}"
    );
    fx.assert_no_ok_so_far(&object_id);
    let files = fx.rt.leftover_module_files(Duration::from_secs(2));
    assert!(files.is_empty(), "files left: {files:?}");
    assert_no_containers_left(&fx.rt.uuid);
}
