//! Container engine faults as the orchestrator sees them: the engine not installed,
//! its daemon down, the image missing, a container that cannot start, the engine
//! stopped while a module runs. Each is a clear error for that module; the runtime
//! stays up and a later create works once the engine is back.
//!
//! Not for: modules on a healthy engine (python_modules.rs).

mod common;

use std::time::Duration;

use common::engine::{with_python, Janitor, PrivateEngine};
use common::{error_text, start_registered_runtime, with_programs, Fixture, RuntimeOptions, WAIT};
use serde_json::json;

const START: Duration = Duration::from_secs(30);

fn options(appsettings: &str) -> RuntimeOptions {
    with_python(with_programs(), &["echo", "exit_code"]).appsettings(appsettings)
}

/// Options for a runtime that uses `engine` (no bridge network there).
fn on_private_engine(engine: &PrivateEngine) -> RuntimeOptions {
    let appsettings = "launcher:\n  PY:\n    docker:\n      network: none\n      \
                       engine_timeout_sec: 20\n      stop_grace_sec: 1\n";
    options(appsettings)
        .env("DOCKER_HOST", &engine.host)
        .settings(json!({"runtime": {"ka_interval_sec": 1}}))
}

fn no_args() -> serde_json::Value {
    json!({"argv": [], "env": []})
}

/// Create a Python module and return the error the runtime answers with.
fn create_fails(fx: &mut Fixture, file: &str) -> String {
    let m = fx.create(file, no_args());
    let err = fx.expect_error(START);
    assert_eq!(
        err["object_id"],
        m.object_id.as_str(),
        "error answers the create: {err}"
    );
    fx.assert_no_ok_so_far(&m.object_id);
    error_text(&err)
}

#[test]
fn engine_not_installed_is_a_clear_error_and_the_runtime_stays_up() {
    let appsettings = "launcher:\n  PY:\n    docker:\n      engine: /nonexistent/docker\n";
    let mut fx = start_registered_runtime(options(appsettings));

    let text = create_fails(&mut fx, "py/echo/echo.py");
    assert!(
        text.contains("'/nonexistent/docker' is not installed"),
        "{text}"
    );
    fx.assert_hello_still_works();
}

#[test]
fn missing_image_is_a_clear_error_naming_the_image() {
    let appsettings =
        "launcher:\n  PY:\n    docker:\n      image: sideload-no-such-image:none\n      \
                       pull: never\n";
    let mut fx = start_registered_runtime(options(appsettings));
    let _janitor = Janitor {
        runtime_uuid: fx.rt.uuid.clone(),
        host: None,
    };

    let text = create_fails(&mut fx, "py/echo/echo.py");
    assert!(text.contains("sideload-no-such-image:none"), "{text}");
    fx.assert_hello_still_works();
    let left = common::engine::containers_of_runtime(&fx.rt.uuid);
    assert!(left.is_empty(), "containers left: {left:?}");
}

#[test]
fn a_container_that_cannot_start_reports_the_engines_message() {
    let appsettings = "launcher:\n  PY:\n    docker:\n      extra_args: ['--user', 'nosuchuser']\n";
    let mut fx = start_registered_runtime(options(appsettings));
    let _janitor = Janitor {
        runtime_uuid: fx.rt.uuid.clone(),
        host: None,
    };

    let text = create_fails(&mut fx, "py/echo/echo.py");
    assert!(text.contains("could not start"), "{text}");
    assert!(text.contains("nosuchuser"), "the engine's words: {text}");
    let left = common::engine::containers_of_runtime(&fx.rt.uuid);
    assert!(left.is_empty(), "containers left: {left:?}");
    let files = fx.rt.leftover_module_files(Duration::from_secs(2));
    assert!(files.is_empty(), "files left: {files:?}");
    fx.assert_hello_still_works();
}

#[test]
fn a_missing_command_in_the_image_ends_the_module_with_code_127_and_says_why() {
    // The init process starts, then cannot run the command: the module runs and
    // ends at once, and the reason is on its stderr topic.
    let appsettings = "launcher:\n  PY:\n    cmd: /no/such/entrypoint\n";
    let mut fx = start_registered_runtime(options(appsettings));
    let _janitor = Janitor {
        runtime_uuid: fx.rt.uuid.clone(),
        host: None,
    };

    let m = fx.create("py/echo/echo.py", no_args());
    let topic = fx.rt.topics.stderr(&m.uuid);
    fx.orch.expect_output(&topic, "/no/such/entrypoint", START);
    let exited = fx.expect_exited(&m.uuid, START);
    assert_eq!(common::exit_code_of(&exited), Some(127), "{exited}");
    let left = common::engine::containers_of_runtime(&fx.rt.uuid);
    assert!(left.is_empty(), "containers left: {left:?}");
}

#[test]
fn daemon_down_is_a_clear_error_and_a_later_create_works_once_it_is_back() {
    let mut engine = PrivateEngine::unstarted();
    let mut fx = start_registered_runtime(on_private_engine(&engine));

    let text = create_fails(&mut fx, "py/echo/echo.py");
    assert!(text.contains("not reachable"), "{text}");
    fx.assert_hello_still_works();

    engine.launch();
    engine.load_runner_image();
    let m = fx.create("py/echo/echo.py", no_args());
    fx.expect_ok(&m.object_id, START);
    fx.expect_stdout(&m.uuid, "ready\n", START);
    let delete_id = fx.delete(&m.uuid);
    fx.expect_ok(&delete_id, WAIT);
    fx.expect_exited(&m.uuid, START);
    let left = engine.containers_of_runtime(&fx.rt.uuid);
    assert!(left.is_empty(), "containers left: {left:?}");
}

#[test]
fn engine_stopped_mid_run_ends_the_module_and_its_container_is_removed_once_back() {
    let mut engine = PrivateEngine::start();
    let mut fx = start_registered_runtime(on_private_engine(&engine));
    let m = fx.create("py/echo/echo.py", no_args());
    fx.expect_ok(&m.object_id, START);
    fx.expect_stdout(&m.uuid, "ready\n", START);

    engine.stop();
    fx.expect_exited(&m.uuid, START);
    let text = create_fails(&mut fx, "py/echo/echo.py");
    assert!(text.contains("not reachable"), "{text}");
    fx.assert_hello_still_works();

    engine.launch();
    let second = fx.create(
        "py/exit_code/exit_code.py",
        json!({"argv": ["5"], "env": []}),
    );
    fx.expect_stdout(&second.uuid, "bye\n", START);
    let exited = fx.expect_exited(&second.uuid, START);
    assert_eq!(common::exit_code_of(&exited), Some(5), "{exited}");

    // The first module's container outlived its removal; the runtime retries it.
    fx.rt.wait_for_log(
        "the retried removal of the first container",
        |log| log.contains("left by a failed removal"),
        Duration::from_secs(20),
    );
    let left = engine.containers_of_runtime(&fx.rt.uuid);
    assert!(left.is_empty(), "containers left: {left:?}");
    assert!(fx.rt.is_running(), "the runtime stays up");
}
