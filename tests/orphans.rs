//! Containers left by a runtime that crashed: at start-up the runtime removes every
//! container labelled with its uuid, logs each one, removes the crashed run's work
//! folders, and never touches containers that are not its own.
//!
//! Not for: removal of containers of modules that end normally (python_modules.rs).

mod common;

use std::time::Duration;

use common::engine::{container_exists, with_python, Bystander, Janitor};
use common::{start_registered_runtime, unique_realm, Broker, Runtime, RuntimeOptions};
use serde_json::json;

const START: Duration = Duration::from_secs(30);

#[test]
fn containers_of_a_killed_runtime_are_removed_at_its_next_start_and_others_are_not() {
    let state = tempfile::tempdir().expect("shared state folder");
    let uuid = common::new_uuid();
    let settings = json!({"runtime": {
        "uuid": uuid,
        "state_dir": state.path().to_string_lossy(),
    }});
    let options =
        || with_python(RuntimeOptions::default(), &["stubborn"]).settings(settings.clone());
    let _janitor = Janitor {
        runtime_uuid: uuid.clone(),
        host: None,
    };
    let bystander = Bystander::start(&format!("sideload-test-bystander-{}", &uuid[..8]));

    let mut fx = start_registered_runtime(options());
    let m = fx.create("py/stubborn/stubborn.py", json!({"argv": [], "env": []}));
    fx.expect_ok(&m.object_id, START);
    fx.expect_stdout(&m.uuid, "ready\n", START);
    fx.rt.kill();

    let container = format!("sideload-{}", m.uuid);
    assert!(
        container_exists(&container),
        "the crash left the container running"
    );
    let work_folder = state.path().join("modules").join(&m.uuid);
    assert!(work_folder.exists(), "the crash left the work folder");

    let broker = Broker::start();
    let next = Runtime::start(&broker, &unique_realm(), options());
    let log = next.wait_for_log(
        "the removal of the crashed run's container",
        |log| log.contains(&format!("removing container '{container}'")),
        START,
    );
    assert!(
        log.contains(&format!("of module '{}'", m.uuid)),
        "the log names the module: {log}"
    );
    next.wait_for_log(
        "the sweep to finish",
        |_| !container_exists(&container),
        START,
    );
    assert!(
        !work_folder.exists(),
        "the crashed run's work folder is removed"
    );
    assert!(
        container_exists(&bystander.name),
        "a container not ours is untouched"
    );
}
