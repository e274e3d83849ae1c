//! Unit tests of loading, layering, validation, paths and the runtime uuid: each
//! states a behaviour a user of a config folder relies on.

use std::fs;

use super::layers::join_key;
use super::runtime_uuid::UUID_FILE;
use super::*;
use crate::protocol::FileType;

/// The example settings.yaml of the Python runtime's README, as written there.
const PYTHON_SEED: &str = "\
# logzero log level: CRITICAL (fewer messages), ERROR, WARNING, INFO, DEBUG (more messages)
loglevel: INFO 

# runtime settings
runtime:
  name: aruntime # runtime name
  #uuid: # leave blank to generate a new uuid; or set a fixed uuid value
  reg_attempts: 0 # 0 = infinite; keeps trying to register
  reg_timeout_seconds: 5 # interval between register attempts
  max_nmodules: 100 # maximum number of modules we support
  realm: realm # realm topic used

# mqtt settings (NOTE: username and password in conf/.secrets.yaml)
mqtt:
  host: broker.com # broker host
  port: 1883 # broker port
  ssl: true # use ssl connection (true/false)

# where/how we keep program files
repository:
  url: https://filestore-host/store # base url where to get download program files

# launcher config; what starts modules 
launcher:
  pipe_stdout: true # stdout/err piped to pubsub (true/false)
";

const MINIMAL: &str = "runtime:\n  name: pi7\n";

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(files: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = folder(files);
    Settings::load_with_env(dir.path(), no_env())
}

fn load_err(files: &[(&str, &str)]) -> String {
    let dir = folder(files);
    let err = Settings::load_with_env(dir.path(), no_env()).unwrap_err();
    // Messages name files relative to the temp folder, so tests compare from there.
    err.to_string()
        .replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn python_runtime_settings_yaml_loads_unchanged() {
    let s = load(&[("settings.yaml", PYTHON_SEED)]).unwrap();

    assert_eq!(s.loglevel, "INFO");
    assert_eq!(s.runtime.name, "aruntime");
    assert_eq!(s.runtime.uuid, None);
    assert_eq!(s.runtime.reg_attempts, 0);
    assert_eq!(s.runtime.reg_timeout_seconds, 5.0);
    assert_eq!(s.runtime.max_nmodules, 100);
    assert_eq!(s.runtime.realm, "realm");
    assert_eq!(s.mqtt.host, "broker.com");
    assert_eq!(s.mqtt.port, 1883);
    assert!(s.mqtt.ssl);
    assert!(s.launcher.pipe_stdout);
    assert_eq!(
        s.repository_base(),
        Store::Http("https://filestore-host/store".into())
    );
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn later_layers_win_and_sections_merge_deeply() {
    let s = load(&[
        (
            ".appsettings.yaml",
            "runtime: {name: app, realm: apprealm}\nmqtt: {host: apphost, port: 1}\n",
        ),
        ("settings.yaml", "runtime: {name: user}\nmqtt: {port: 2}\n"),
        (
            ".secrets.yaml",
            "dynaconf_merge: true\nruntime: {name: secret}\nmqtt: {username: u, password: p}\n",
        ),
    ])
    .unwrap();

    assert_eq!(s.runtime.name, "secret");
    assert_eq!(s.runtime.realm, "apprealm");
    assert_eq!(s.mqtt.host, "apphost");
    assert_eq!(s.mqtt.port, 2);
    assert_eq!(s.mqtt.username.as_deref(), Some("u"));
    assert_eq!(s.mqtt.password.as_deref(), Some("p"));
    assert_eq!(
        s.runtime.ka_interval_sec, 60.0,
        "untouched keys keep defaults"
    );
    assert!(
        !s.warnings.iter().any(|w| w.contains("key")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn environment_overrides_nested_keys_numbers_text_and_lists() {
    let dir = folder(&[("settings.yaml", MINIMAL)]);
    let vars = env(&[
        ("SIDELOAD__MQTT__PORT", "1884"),
        ("sideload__Runtime__Name", "007"),
        ("SIDELOAD__DIALECT__TOPICS__LOG", "x/{realm}/#"),
        ("SIDELOAD__RUNTIME__APIS", "[wasm, wasi]"),
        ("SIDELOAD__MQTT__SSL", "true"),
        ("SIDELOAD__MQTT__PASSWORD", "123456"),
        ("PATH", "/usr/bin"),
    ]);
    let s = Settings::load_with_env(dir.path(), vars).unwrap();

    assert_eq!(s.mqtt.port, 1884);
    assert_eq!(s.runtime.name, "007");
    assert_eq!(s.dialect.topics.log, "x/{realm}/#");
    assert_eq!(s.runtime.apis, vec!["wasm".to_string(), "wasi".to_string()]);
    assert!(s.mqtt.ssl);
    assert_eq!(s.mqtt.password.as_deref(), Some("123456"));
}

#[test]
fn bad_environment_override_names_the_variable_and_key() {
    let dir = folder(&[("settings.yaml", MINIMAL)]);
    let vars = env(&[("SIDELOAD__MQTT__PORT", "many")]);
    let err = Settings::load_with_env(dir.path(), vars).unwrap_err();

    assert_eq!(
        err.to_string(),
        "environment variable 'SIDELOAD__MQTT__PORT': 'mqtt.port': invalid type: string \"many\", expected u16"
    );
}

#[test]
fn environment_override_of_unknown_key_warns() {
    let dir = folder(&[("settings.yaml", MINIMAL)]);
    let vars = env(&[("SIDELOAD__MQTT__PORTT", "1"), ("SIDELOAD__", "x")]);
    let s = Settings::load_with_env(dir.path(), vars).unwrap();

    assert!(s
        .warnings
        .iter()
        .any(|w| w
            == "environment variable 'SIDELOAD__MQTT__PORTT': unknown key 'mqtt.portt' ignored"));
    assert!(s.warnings.iter().any(|w| w.contains("'SIDELOAD__'")));
}

#[test]
fn mistyped_value_names_file_and_key() {
    let err = load_err(&[("settings.yaml", "runtime:\n  max_nmodules: ten\n")]);

    assert_eq!(
        err,
        "settings.yaml: 'runtime.max_nmodules': invalid type: string \"ten\", expected usize"
    );
}

#[test]
fn mistyped_value_in_a_lower_layer_is_reported_even_when_overridden() {
    let err = load_err(&[
        (".appsettings.yaml", "mqtt:\n  port: [1]\n"),
        ("settings.yaml", "mqtt:\n  port: 1883\n"),
    ]);

    assert!(
        err.starts_with(".appsettings.yaml: 'mqtt.port': invalid type: sequence"),
        "{err}"
    );
}

#[test]
fn invalid_yaml_names_the_file() {
    let err = load_err(&[("settings.yaml", "runtime: [\n")]);

    assert!(err.starts_with("settings.yaml: invalid YAML: "), "{err}");
}

#[test]
fn missing_settings_yaml_is_an_error_naming_it() {
    let err = load_err(&[(".appsettings.yaml", "loglevel: INFO\n")]);

    assert_eq!(
        err,
        "settings.yaml: not found (every config folder needs a settings.yaml)"
    );
}

#[test]
fn missing_config_folder_is_an_error_naming_it() {
    let err = Settings::load_with_env(Path::new("/nonexistent/conf"), no_env()).unwrap_err();

    assert_eq!(
        err.to_string(),
        "config folder '/nonexistent/conf' does not exist or is not a folder"
    );
}

#[test]
fn invalid_loglevel_names_file_key_and_value() {
    let err = load_err(&[("settings.yaml", "loglevel: LOUD\n")]);

    assert_eq!(
        err,
        "settings.yaml: 'loglevel': 'LOUD' is not a log level (CRITICAL, ERROR, WARNING, INFO, DEBUG)"
    );
}

#[test]
fn loglevel_is_case_insensitive_and_accepts_warn() {
    let s = load(&[("settings.yaml", "loglevel: warn\n")]).unwrap();
    assert_eq!(s.loglevel, "WARNING");
    assert_eq!(s.log_level_filter(), log::LevelFilter::Warn);

    let s = load(&[("settings.yaml", "loglevel: Critical\n")]).unwrap();
    assert_eq!(s.log_level_filter(), log::LevelFilter::Error);

    let s = load(&[("settings.yaml", "loglevel: DEBUG\n")]).unwrap();
    assert_eq!(s.log_level_filter(), log::LevelFilter::Debug);
}

#[test]
fn out_of_range_values_are_rejected_naming_key_and_value() {
    let cases = [
        ("mqtt: {port: 0}", "'mqtt.port': '0' must be at least 1"),
        (
            "runtime: {reg_attempts: -2}",
            "'runtime.reg_attempts': '-2' must be -1",
        ),
        (
            "runtime: {reg_timeout_seconds: 0}",
            "'runtime.reg_timeout_seconds': '0' must be a number greater than 0",
        ),
        (
            "runtime: {ka_interval_sec: 0.001}",
            "'runtime.ka_interval_sec': '0.001' must be at least 1 second",
        ),
        (
            "runtime: {ka_interval_sec: -1}",
            "'runtime.ka_interval_sec': '-1'",
        ),
        ("runtime: {max_nmodules: 0}", "'runtime.max_nmodules': '0'"),
        (
            "runtime: {inactivity_timeout_sec: -5}",
            "'runtime.inactivity_timeout_sec': '-5' must be 0 (off)",
        ),
        (
            "mqtt: {max_incoming_packet_bytes: 1000}",
            "'mqtt.max_request_bytes': '262144' exceeds mqtt.max_incoming_packet_bytes '1000'",
        ),
        (
            "repository: {total_timeout_sec: 0}",
            "'repository.total_timeout_sec': '0' must be a number greater than 0",
        ),
        (
            "repository: {url: 'ftp://host/x'}",
            "'repository.url': 'ftp://host/x' must start with http://, https:// or file://",
        ),
        (
            "dialect: {name: mqtt}",
            "'dialect.name': 'mqtt' is not one of silverline, arena, arts",
        ),
        (
            "dialect: {exit_notice: gone}",
            "'dialect.exit_notice': 'gone' is not one of exited, delete",
        ),
        (
            "dialect: {error_format: xml}",
            "'dialect.error_format': 'xml' is not one of envelope, bare",
        ),
        (
            "runtime: {uuid: not-a-uuid}",
            "'runtime.uuid': 'not-a-uuid' is not a uuid",
        ),
        (
            "launcher: {output: {max_buffered_bytes: 0}}",
            "'launcher.output.max_buffered_bytes': '0' must be at least 1",
        ),
        (
            "mqtt: {reconnect_min_sec: 10, reconnect_max_sec: 5}",
            "'mqtt.reconnect_max_sec': '5' is less than mqtt.reconnect_min_sec '10'",
        ),
        (
            "runtime: {ka_interval_sec: 1e20}",
            "'runtime.ka_interval_sec': '100000000000000000000' must be a number greater than 0 and at most 31536000 (a year)",
        ),
        (
            "mqtt: {reconnect_max_sec: .inf}",
            "'mqtt.reconnect_max_sec': 'inf' must be",
        ),
        (
            "runtime: {reg_timeout_seconds: .nan}",
            "'runtime.reg_timeout_seconds'",
        ),
    ];
    for (yaml, expected) in cases {
        let err = load_err(&[("settings.yaml", yaml)]);
        assert!(
            err.starts_with(&format!("settings.yaml: {expected}")),
            "{yaml}: {err}"
        );
    }
}

#[test]
fn validation_error_names_the_layer_that_set_the_value() {
    let err = load_err(&[
        ("settings.yaml", MINIMAL),
        (".secrets.yaml", "mqtt: {port: 0}\n"),
    ]);

    assert!(err.starts_with(".secrets.yaml: 'mqtt.port'"), "{err}");
}

#[test]
fn unknown_keys_warn_naming_file_and_key_without_failing() {
    let dir = folder(&[(
        "settings.yaml",
        "runtime: {name: x, colour: blue}\nlauncher:\n  docker: {image: py}\n",
    )]);
    let s = Settings::load_with_env(dir.path(), no_env()).unwrap();
    let file = dir.path().join("settings.yaml").display().to_string();

    assert!(s
        .warnings
        .contains(&format!("{file}: unknown key 'runtime.colour' ignored")));
    assert!(s
        .warnings
        .contains(&format!("{file}: unknown key 'launcher.docker' ignored")));
    assert_eq!(s.runtime.name, "x");
}

#[test]
fn blank_values_mean_unset() {
    let s = load(&[
        (
            ".appsettings.yaml",
            "runtime:\n  uuid: 1b4e28ba-2fa1-11d2-883f-0016d3cca427\n",
        ),
        (
            "settings.yaml",
            "runtime:\n  uuid:\n  name:\nmqtt:\n# host: x\n",
        ),
    ])
    .unwrap();

    assert_eq!(s.runtime.uuid, None);
    assert_eq!(s.runtime.name, "sideload");
    assert_eq!(s.mqtt.host, "localhost");
}

#[test]
fn python_style_values_are_accepted() {
    let s = load(&[(
        "settings.yaml",
        "MQTT: {ssl: yes, username: 42}\nlauncher: {pipe_stdout: off}\n",
    )])
    .unwrap();

    assert!(s.mqtt.ssl);
    assert_eq!(s.mqtt.username.as_deref(), Some("42"));
    assert!(!s.launcher.pipe_stdout);
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = folder(&[(
        "settings.yaml",
        "runtime: {state_dir: state}\nmqtt: {ca_file: ca.pem}\nrepository: {url: 'file://store'}\n",
    )]);
    let s = Settings::load_with_env(dir.path(), no_env()).unwrap();

    assert_eq!(s.config_dir, dir.path());
    assert_eq!(s.runtime.state_dir, dir.path().join("state"));
    assert_eq!(s.mqtt.ca_file, Some(dir.path().join("ca.pem")));
    assert_eq!(s.repository_base(), Store::File(dir.path().join("store")));
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("'mqtt.ca_file' is set")));
    assert!(s.warnings.iter().any(|w| w.contains("does not exist")));
}

#[test]
fn absolute_file_store_and_trailing_slash_of_http_store() {
    let s = load(&[(
        "settings.yaml",
        "repository: {url: 'file:///srv/programs'}\n",
    )])
    .unwrap();
    assert_eq!(
        s.repository_base(),
        Store::File(PathBuf::from("/srv/programs"))
    );

    let s = load(&[(
        "settings.yaml",
        "repository: {url: 'http://h:8000/store/'}\n",
    )])
    .unwrap();
    assert_eq!(
        s.repository_base(),
        Store::Http("http://h:8000/store".into())
    );
}

#[test]
fn missing_ca_file_with_ssl_is_an_error() {
    let err = load_err(&[("settings.yaml", "mqtt: {ssl: true, ca_file: ca.pem}\n")]);

    assert!(err.starts_with("settings.yaml: 'mqtt.ca_file': '"), "{err}");
    assert!(err.ends_with("ca.pem' is not a file"), "{err}");
}

#[test]
fn generated_runtime_uuid_is_kept_across_restarts() {
    let dir = folder(&[("settings.yaml", "runtime: {state_dir: state}\n")]);

    let mut first = Settings::load_with_env(dir.path(), no_env()).unwrap();
    let uuid = first.resolve_runtime_uuid().unwrap();
    let mut second = Settings::load_with_env(dir.path(), no_env()).unwrap();
    let again = second.resolve_runtime_uuid().unwrap();

    assert!(uuid::Uuid::parse_str(&uuid).is_ok());
    assert_eq!(uuid, again);
    assert_eq!(first.runtime.uuid.as_deref(), Some(uuid.as_str()));
    let files: Vec<_> = fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, vec![std::ffi::OsString::from(UUID_FILE)]);
}

#[test]
fn a_peek_at_the_runtime_uuid_writes_nothing() {
    let dir = folder(&[("settings.yaml", "runtime: {state_dir: state}\n")]);

    let mut s = Settings::load_with_env(dir.path(), no_env()).unwrap();
    assert_eq!(s.peek_runtime_uuid().unwrap(), None);
    assert!(!dir.path().join("state").exists());

    let kept = s.resolve_runtime_uuid().unwrap();
    let mut again = Settings::load_with_env(dir.path(), no_env()).unwrap();
    assert_eq!(again.peek_runtime_uuid().unwrap(), Some(kept.clone()));
    assert_eq!(again.runtime.uuid, Some(kept));
}

#[test]
fn fixed_runtime_uuid_is_honoured_and_nothing_written() {
    let fixed = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    let dir = folder(&[(
        "settings.yaml",
        &format!("runtime: {{uuid: {fixed}, state_dir: state}}\n"),
    )]);
    let mut s = Settings::load_with_env(dir.path(), no_env()).unwrap();

    assert_eq!(s.resolve_runtime_uuid().unwrap(), fixed);
    assert!(!dir.path().join("state").exists());
}

#[test]
fn unusable_runtime_uuid_file_is_replaced() {
    let dir = folder(&[("settings.yaml", "runtime: {state_dir: .}\n")]);
    fs::write(dir.path().join(UUID_FILE), "garbage").unwrap();
    let mut s = Settings::load_with_env(dir.path(), no_env()).unwrap();

    let uuid = s.resolve_runtime_uuid().unwrap();

    assert!(uuid::Uuid::parse_str(&uuid).is_ok());
    let kept = fs::read_to_string(dir.path().join(UUID_FILE)).unwrap();
    assert_eq!(kept.trim(), uuid);
}

#[test]
fn masked_output_never_shows_the_password() {
    let s = load(&[
        ("settings.yaml", MINIMAL),
        (
            ".secrets.yaml",
            "mqtt: {username: alice, password: hunter2}\n",
        ),
    ])
    .unwrap();

    let shown = s.masked_yaml();

    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password: '********'"), "{shown}");
    assert!(shown.contains("username: alice"), "{shown}");
    assert!(shown.contains("name: pi7"), "{shown}");
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[test]
fn masked_output_shows_unset_password_as_null() {
    let s = load(&[("settings.yaml", MINIMAL)]).unwrap();

    assert!(s.masked_yaml().contains("password: null"));
}

#[test]
fn validate_checks_settings_changed_after_loading() {
    let mut s = load(&[("settings.yaml", MINIMAL)]).unwrap();
    assert!(s.validate().is_ok());

    s.mqtt.port = 0;

    assert_eq!(
        s.validate().unwrap_err().to_string(),
        "settings: 'mqtt.port': '0' must be at least 1"
    );
}

#[test]
fn non_text_keys_warn_and_are_ignored() {
    let s = load(&[(
        "settings.yaml",
        "1: x
mqtt: {true: y}
",
    )])
    .unwrap();

    assert!(s
        .warnings
        .iter()
        .any(|w| w.ends_with("key '1' in 'top level' is not text, ignored")));
    assert!(s
        .warnings
        .iter()
        .any(|w| w.ends_with("key 'true' in 'mqtt' is not text, ignored")));
}

#[test]
fn optional_keys_all_hold_text() {
    // Blank and env handling treat every null default as text; a new optional
    // key of another type needs its own handling.
    fn nulls(value: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Value::Mapping(map) = value {
            for (k, v) in map {
                let path = join_key(prefix, k.as_str().unwrap());
                if v.is_null() {
                    out.push(path);
                } else {
                    nulls(v, &path, out);
                }
            }
        }
    }
    let mut found = Vec::new();
    nulls(&Layers::new().schema, "", &mut found);

    assert_eq!(
        found,
        [
            "runtime.uuid",
            "mqtt.username",
            "mqtt.password",
            "mqtt.ca_file",
            "launcher.py.docker.memory",
            "launcher.py.docker.network",
            "launcher.wa.docker.memory",
            "launcher.wa.docker.network"
        ]
    );
}

#[test]
fn shipped_config_folders_load_and_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (folder, dialect) in [
        ("conf", "silverline"),
        ("conf/arena", "arena"),
        ("conf/arts", "arts"),
    ] {
        let s = Settings::load_with_env(&root.join(folder), no_env())
            .unwrap_or_else(|e| panic!("{folder}: {e}"));

        assert_eq!(s.dialect.name, dialect);
        assert!(
            !s.warnings.iter().any(|w| w.contains("unknown key")),
            "{folder}: {:?}",
            s.warnings
        );
        assert!(s.runtime.state_dir.ends_with(".state"));
        assert!(s.repository.url.starts_with("file:///"));
    }
}

#[test]
fn output_batch_that_cannot_fit_a_packet_as_json_is_rejected_naming_both_keys() {
    let err = load_err(&[(
        "settings.yaml",
        "dialect: {stdio_json: true}\nlauncher: {output: {max_batch_bytes: 200000}}\n",
    )]);

    assert_eq!(
        err,
        "settings.yaml: 'launcher.output.max_batch_bytes': '200000' needs up to '1204096' \
         bytes once published (x6 for JSON string escapes with dialect.stdio_json 'true', \
         plus 4096 for topic and header), more than mqtt.max_packet_bytes '1048576': lower \
         launcher.output.max_batch_bytes to at most '174080' or raise mqtt.max_packet_bytes"
    );
}

#[test]
fn output_batch_sent_raw_only_needs_room_for_topic_and_header() {
    let raw = "launcher: {output: {max_batch_bytes: 200000}}\n";
    assert!(load(&[("settings.yaml", raw)]).is_ok());

    let s = load(&[(
        "settings.yaml",
        "dialect: {stdio_json: true}\nlauncher: {output: {max_batch_bytes: 174080}}\n",
    )]);
    assert!(
        s.is_ok(),
        "the largest batch the error suggests is accepted"
    );
}

#[test]
fn batch_check_names_the_layer_that_lowered_the_packet_limit() {
    let err = load_err(&[
        ("settings.yaml", MINIMAL),
        (
            ".secrets.yaml",
            "mqtt: {max_packet_bytes: 65536, max_request_bytes: 1024}\n",
        ),
    ]);

    assert!(
        err.starts_with(
            ".secrets.yaml: 'launcher.output.max_batch_bytes': '65536' needs up to '69632' bytes"
        ),
        "{err}"
    );
    assert!(err.contains("mqtt.max_packet_bytes '65536'"), "{err}");
}

#[test]
fn parent_steps_in_relative_paths_are_folded_away() {
    let dir = folder(&[(
        "settings.yaml",
        "runtime: {state_dir: ../state}\nrepository: {url: 'file://../store'}\n",
    )]);
    let s = Settings::load_with_env(dir.path(), no_env()).unwrap();

    let parent = dir.path().parent().unwrap();
    assert_eq!(s.runtime.state_dir, parent.join("state"));
    assert_eq!(s.repository_base(), Store::File(parent.join("store")));
}

#[test]
fn launcher_table_is_keyed_by_filetype_and_accepts_the_python_runtime_class_names() {
    let yaml = "launcher:\n  PY:\n    class: launcher.python_launcher.PythonLauncher\n    \
                cmd: /run.sh\n    docker:\n      image: my/runner:2\n      engine: podman\n      \
                memory: 256m\n      extra_args: ['--read-only']\n";
    let s = load(&[(".appsettings.yaml", yaml), ("settings.yaml", "")]).unwrap();
    let py = s.launcher.entry(FileType::Python);
    assert_eq!(py.kind(), Some(LauncherKind::Container));
    assert_eq!(py.cmd, "/run.sh");
    assert_eq!(py.docker.image, "my/runner:2");
    assert_eq!(py.docker.engine, "podman");
    assert_eq!(py.docker.memory.as_deref(), Some("256m"));
    assert_eq!(py.docker.extra_args, ["--read-only"]);
    assert_eq!(py.docker.workdir, "/usr/src/app", "defaults fill the rest");
    assert_eq!(
        s.launcher.entry(FileType::Wasm).kind(),
        Some(LauncherKind::Wasm)
    );
}

#[test]
fn the_default_launcher_table_runs_python_in_the_runner_image() {
    let s = load(&[("settings.yaml", "")]).unwrap();
    let py = s.launcher.entry(FileType::Python);
    assert_eq!(py.kind(), Some(LauncherKind::Container));
    assert_eq!(py.cmd, "/entrypoint.sh");
    assert_eq!(py.docker.image, "slframework/slruntime-python-runner");
    assert_eq!(py.docker.engine, "docker");
    assert_eq!(py.docker.pull, "missing");
}

#[test]
fn a_filetype_can_be_disabled() {
    let s = load(&[("settings.yaml", "launcher: {PY: {class: disabled}}")]).unwrap();
    let py = s.launcher.entry(FileType::Python);
    assert_eq!(py.kind(), Some(LauncherKind::Disabled));
}

#[test]
fn bad_launcher_table_entries_are_rejected_naming_key_and_value() {
    let cases = [
        (
            "launcher: {PY: {class: ruby}}",
            "'launcher.py.class': 'ruby' is not a launcher (container, wasm or disabled)",
        ),
        (
            "launcher: {PY: {class: wasm}}",
            "'launcher.py.class': 'wasm' cannot run filetype 'PY' modules",
        ),
        (
            "launcher: {WA: {class: container}}",
            "'launcher.wa.class': 'container' cannot run filetype 'WA' modules",
        ),
        (
            "launcher: {PY: {docker: {workdir: app}}}",
            "'launcher.py.docker.workdir': 'app' must be an absolute path in the container",
        ),
        (
            "launcher: {PY: {docker: {pull: sometimes}}}",
            "'launcher.py.docker.pull': 'sometimes' must be missing, never or always",
        ),
        (
            "launcher: {PY: {docker: {engine_timeout_sec: 0}}}",
            "'launcher.py.docker.engine_timeout_sec': '0' must be a number greater than 0",
        ),
        ("launcher: {PY: {cmd: ''}}", "'launcher.py.cmd'"),
        (
            "launcher: {PY: {docker: {image: ''}}}",
            "'launcher.py.docker.image'",
        ),
        ("repository: {max_files: 0}", "'repository.max_files': '0'"),
    ];
    for (yaml, expected) in cases {
        let err = load_err(&[("settings.yaml", yaml)]);
        assert!(
            err.starts_with(&format!("settings.yaml: {expected}")),
            "{yaml}: {err}"
        );
    }
}

#[test]
fn an_unknown_filetype_in_the_launcher_table_is_reported() {
    let dir = folder(&[("settings.yaml", "launcher: {JS: {class: container}}")]);
    let s = Settings::load_with_env(dir.path(), no_env()).unwrap();
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("unknown key 'launcher.js' ignored")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn launcher_engine_can_be_set_from_the_environment() {
    let dir = folder(&[("settings.yaml", "")]);
    let vars = env(&[("SIDELOAD__LAUNCHER__PY__DOCKER__ENGINE", "podman")]);
    let s = Settings::load_with_env(dir.path(), vars).unwrap();
    assert_eq!(s.launcher.py.docker.engine, "podman");
}
