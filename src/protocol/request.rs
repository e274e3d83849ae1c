//! Validation of a module create request's `data` into a `ModuleRequest`, in any
//! dialect: `file` or `filename`, `args` as an object, a list or a string, `env` as a
//! list, an object or a string, namespace and scene for the module's topics.
//!
//! Not for: deciding whether the runtime can run the module (apis, max_nmodules),
//! which the supervisor decides.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::paths::safe_relative_path;
use super::topics::topic_level_problem;
use super::{printable, FileType, ModuleRef, ModuleRequest, ProtocolError};

/// Namespace and scene of a module that names neither.
pub const DEFAULT_NAMESPACE: &str = "public";
pub const DEFAULT_SCENE: &str = "default";

/// Longest accepted module uuid, in bytes (it goes into topics and folder names).
const MAX_UUID_BYTES: usize = 128;

impl FileType {
    /// Parse a wire `filetype`: `WA` / `PY`, any case; the `WASM` / `PYTHON` spellings
    /// of older runtimes are accepted too.
    pub fn from_wire(value: &str) -> Result<FileType, ProtocolError> {
        match value.trim().to_ascii_uppercase().as_str() {
            "WA" | "WASM" => Ok(FileType::Wasm),
            "PY" | "PYTHON" => Ok(FileType::Python),
            _ => Err(ProtocolError::UnknownFiletype(printable(value))),
        }
    }

    /// The filetype a file name implies (`.wasm`, `.py`), if any.
    pub fn from_file_name(file: &str) -> Option<FileType> {
        let lower = file.to_ascii_lowercase();
        if lower.ends_with(".wasm") {
            Some(FileType::Wasm)
        } else if lower.ends_with(".py") {
            Some(FileType::Python)
        } else {
            None
        }
    }

    /// The wire spelling: `WA` or `PY`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Wasm => "WA",
            FileType::Python => "PY",
        }
    }
}

impl ModuleRequest {
    /// The module's identity, as the outbound builders need it.
    pub fn module_ref(&self) -> ModuleRef {
        ModuleRef {
            uuid: self.uuid.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            scene: self.scene.clone(),
        }
    }
}

/// Validate the `data` of a module create request. `check_scene` asks that namespace
/// and scene be usable as topic levels (when the dialect's topics contain them).
pub(crate) fn module_request(
    data: &Map<String, Value>,
    check_scene: bool,
) -> Result<ModuleRequest, ProtocolError> {
    let uuid = module_uuid(data)?;
    let name = optional_str(data, "name", "data.name")?
        .filter(|name| !name.is_empty())
        .unwrap_or(&uuid)
        .to_string();
    // The name goes into log lines and container labels, one line each.
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "data.name",
            format!("'{}' contains a control character", printable(&name)),
        ));
    }
    let file = program_file(data)?;
    let location = match optional_str(data, "location", "data.location")? {
        Some(location) if !location.is_empty() => safe_relative_path(location)?,
        _ => String::new(),
    };
    let filetype = filetype(data, &file)?;
    let sha256 = sha256_sums(data, &file)?;

    let args = Args::from_data(data)?;
    let mut env = args.env;
    if let Some(top_level) = present(data, "env") {
        env.extend(env_pairs(top_level, "data.env")?);
    }
    let (namespace, scene) = namespace_and_scene(data, &env, check_scene)?;
    let apis = match present(data, "apis") {
        Some(value) => string_list(value, "data.apis")?,
        None => Vec::new(),
    };

    Ok(ModuleRequest {
        uuid,
        name,
        filetype,
        file,
        location,
        argv: args.argv,
        env,
        dirs: args.dirs,
        apis,
        limit_sec: args.limit_sec,
        namespace,
        scene,
        sha256,
        raw: Value::Object(data.clone()),
    })
}

fn module_uuid(data: &Map<String, Value>) -> Result<String, ProtocolError> {
    let uuid = optional_str(data, "uuid", "data.uuid")?
        .ok_or_else(|| ProtocolError::MissingField("data.uuid".into()))?;
    if let Some(reason) = topic_level_problem(uuid) {
        return Err(invalid("data.uuid", reason));
    }
    // The uuid names the module's work folder, which is removed with all it holds.
    if uuid == "." || uuid == ".." {
        return Err(invalid(
            "data.uuid",
            format!(
                "'{uuid}' cannot name a module: it would name a folder outside the module's own"
            ),
        ));
    }
    if uuid.len() > MAX_UUID_BYTES {
        return Err(invalid(
            "data.uuid",
            format!("longer than {MAX_UUID_BYTES} bytes"),
        ));
    }
    Ok(uuid.to_string())
}

/// `file` (silverline, arena) or `filename` (arts), checked to stay in the store.
fn program_file(data: &Map<String, Value>) -> Result<String, ProtocolError> {
    let (key, field) = if present(data, "file").is_some() {
        ("file", "data.file")
    } else {
        ("filename", "data.filename")
    };
    let file = optional_str(data, key, field)?
        .ok_or_else(|| ProtocolError::MissingField("data.file".into()))?;
    if file.is_empty() {
        return Err(invalid(field, "must not be empty".into()));
    }
    safe_relative_path(file)
}

fn filetype(data: &Map<String, Value>, file: &str) -> Result<FileType, ProtocolError> {
    match optional_str(data, "filetype", "data.filetype")? {
        Some(given) if !given.trim().is_empty() => FileType::from_wire(given),
        _ => FileType::from_file_name(file).ok_or_else(|| {
            invalid(
                "data.filetype",
                format!(
                    "missing, and file '{file}' has no '.wasm' or '.py' extension to infer it from"
                ),
            )
        }),
    }
}

/// `sha256`: one sum for the program file, or an object of names (relative to the
/// program's folder) to sums; sums come back lowercase.
fn sha256_sums(
    data: &Map<String, Value>,
    file: &str,
) -> Result<BTreeMap<String, String>, ProtocolError> {
    let mut sums = BTreeMap::new();
    match present(data, "sha256") {
        None => {}
        Some(Value::String(sum)) => {
            let base_name = file.rsplit('/').next().unwrap_or(file);
            sums.insert(base_name.to_string(), sha256_hex(sum, "data.sha256")?);
        }
        Some(Value::Object(object)) => {
            for (name, value) in object {
                let field = format!("data.sha256.{}", printable(name));
                let Value::String(sum) = value else {
                    return Err(wrong_type(&field, "a sha256 as 64 hex digits", value));
                };
                sums.insert(safe_relative_path(name)?, sha256_hex(sum, &field)?);
            }
        }
        Some(other) => {
            return Err(wrong_type(
                "data.sha256",
                "a sha256 as 64 hex digits, or an object of file names to them",
                other,
            ))
        }
    }
    Ok(sums)
}

fn sha256_hex(sum: &str, field: &str) -> Result<String, ProtocolError> {
    if sum.len() == 64 && sum.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Ok(sum.to_ascii_lowercase());
    }
    let short: String = sum.chars().take(80).collect();
    Err(invalid(
        field,
        format!(
            "'{}' is not a sha256: expected 64 hex digits",
            printable(&short)
        ),
    ))
}

/// What `args` carries, whatever its shape.
#[derive(Default)]
struct Args {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    dirs: Vec<String>,
    limit_sec: Option<f64>,
}

impl Args {
    fn from_data(data: &Map<String, Value>) -> Result<Args, ProtocolError> {
        let Some(args) = present(data, "args") else {
            return Ok(Args::default());
        };
        match args {
            Value::Object(object) => Args::from_object(object),
            Value::Array(_) | Value::String(_) => Ok(Args {
                argv: argv(args, "data.args")?,
                ..Args::default()
            }),
            other => Err(wrong_type(
                "data.args",
                "an object, a list or a string",
                other,
            )),
        }
    }

    /// The silverline shape: `{argv, env, dirs, limit, ...engine hints}`.
    fn from_object(object: &Map<String, Value>) -> Result<Args, ProtocolError> {
        let mut args = Args::default();
        if let Some(value) = present(object, "argv") {
            args.argv = argv(value, "data.args.argv")?;
        }
        if let Some(value) = present(object, "env") {
            args.env = env_pairs(value, "data.args.env")?;
        }
        if let Some(value) = present(object, "dirs") {
            for dir in string_list(value, "data.args.dirs")? {
                args.dirs.push(safe_relative_path(&dir)?);
            }
        }
        if let Some(value) = present(object, "limit") {
            args.limit_sec = Some(limit(value)?);
        }
        Ok(args)
    }
}

/// Arguments as a list (numbers and booleans written out) or a space-separated string.
fn argv(value: &Value, field: &str) -> Result<Vec<String>, ProtocolError> {
    let items: Vec<String> = match value {
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| scalar_text(item).ok_or_else(|| wrong_item(field, i, item)))
            .collect::<Result<_, _>>()?,
        other => return Err(wrong_type(field, "a list of strings or a string", other)),
    };
    if let Some(bad) = items.iter().find(|arg| arg.contains('\0')) {
        return Err(invalid(
            field,
            format!("argument '{}' contains a NUL character", printable(bad)),
        ));
    }
    Ok(items)
}

/// Environment as a list of `K=V`, an object, or a space-separated string of `K=V`.
fn env_pairs(value: &Value, field: &str) -> Result<Vec<(String, String)>, ProtocolError> {
    let pairs = match value {
        Value::String(s) => s
            .split_whitespace()
            .map(|entry| split_env_entry(entry, field))
            .collect::<Result<Vec<_>, _>>()?,
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(entry) => split_env_entry(entry, field),
                other => Err(wrong_item(field, i, other)),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Value::Object(object) => object
            .iter()
            .map(|(key, item)| {
                let value = match item {
                    Value::Null => String::new(),
                    other => scalar_text(other).ok_or_else(|| {
                        wrong_type(&format!("{field}.{}", printable(key)), "a string", other)
                    })?,
                };
                Ok((key.clone(), value))
            })
            .collect::<Result<Vec<_>, ProtocolError>>()?,
        other => {
            return Err(wrong_type(
                field,
                "a list of 'K=V' strings, an object or a string",
                other,
            ))
        }
    };

    for (key, value) in &pairs {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            return Err(invalid(
                field,
                format!(
                    "'{}={}' is not a valid environment entry",
                    printable(key),
                    printable(value)
                ),
            ));
        }
    }
    Ok(pairs)
}

fn split_env_entry(entry: &str, field: &str) -> Result<(String, String), ProtocolError> {
    match entry.split_once('=') {
        Some((key, value)) => Ok((key.to_string(), value.to_string())),
        None => Err(invalid(
            field,
            format!("entry '{}' is not of the form K=V", printable(entry)),
        )),
    }
}

fn limit(value: &Value) -> Result<f64, ProtocolError> {
    let Value::Number(number) = value else {
        return Err(wrong_type("data.args.limit", "a number of seconds", value));
    };
    match number.as_f64() {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => Ok(seconds),
        _ => Err(invalid(
            "data.args.limit",
            format!("expected a number of seconds above 0, got '{number}'"),
        )),
    }
}

/// From `scene` when it reads `namespace/scene`, else from `NAMESPACE` / `SCENE` in
/// the environment, else `public` / `default`.
fn namespace_and_scene(
    data: &Map<String, Value>,
    env: &[(String, String)],
    check: bool,
) -> Result<(String, String), ProtocolError> {
    let from_env = |key: &str| {
        env.iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
    };

    let scene_field = optional_str(data, "scene", "data.scene")?;
    // Exactly two non-empty parts; `a/b/c` is not of that form.
    let (namespace, scene, field) = match scene_field.and_then(|s| s.split_once('/')) {
        Some((namespace, scene))
            if !namespace.is_empty() && !scene.is_empty() && !scene.contains('/') =>
        {
            (namespace.to_string(), scene.to_string(), "data.scene")
        }
        _ => (
            from_env("NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            from_env("SCENE").unwrap_or_else(|| DEFAULT_SCENE.into()),
            "data.env",
        ),
    };

    if check {
        for value in [&namespace, &scene] {
            if let Some(reason) = topic_level_problem(value) {
                return Err(invalid(field, reason));
            }
        }
    }
    Ok((namespace, scene))
}

/// A field's value, `None` when absent or `null`.
pub(crate) fn present<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    data.get(key).filter(|value| !value.is_null())
}

/// A string field, `None` when absent or `null`, an error for any other type.
pub(crate) fn optional_str<'a>(
    data: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, ProtocolError> {
    match present(data, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

fn string_list(value: &Value, field: &str) -> Result<Vec<String>, ProtocolError> {
    let Value::Array(items) = value else {
        return Err(wrong_type(field, "a list of strings", value));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(wrong_item(field, i, other)),
        })
        .collect()
}

/// Strings as they are; numbers and booleans written out.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn wrong_type(field: &str, expected: &str, found: &Value) -> ProtocolError {
    ProtocolError::WrongType {
        field: field.to_string(),
        expected: format!("{expected}, got {}", describe(found)),
    }
}

fn wrong_item(field: &str, index: usize, found: &Value) -> ProtocolError {
    wrong_type(&format!("{field}[{index}]"), "a string", found)
}

fn invalid(field: &str, reason: String) -> ProtocolError {
    ProtocolError::InvalidValue {
        field: field.to_string(),
        reason,
    }
}

/// A short description of a JSON value for error messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean '{b}'"),
        Value::Number(n) => format!("the number '{n}'"),
        Value::String(s) => {
            let short: String = s.chars().take(64).collect();
            format!("the string '{}'", printable(&short))
        }
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(data: Value) -> Result<ModuleRequest, ProtocolError> {
        module_request(data.as_object().unwrap(), true)
    }

    fn minimal() -> Value {
        json!({"uuid": "m-1", "file": "hello.wasm"})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut data = minimal();
        data[key] = value;
        data
    }

    #[test]
    fn minimal_request_gets_defaults() {
        let request = parse(minimal()).unwrap();
        assert_eq!(request.name, "m-1");
        assert_eq!(request.filetype, FileType::Wasm);
        assert_eq!(request.location, "");
        assert!(request.argv.is_empty() && request.env.is_empty() && request.dirs.is_empty());
        assert_eq!(request.limit_sec, None);
        assert_eq!(
            (request.namespace.as_str(), request.scene.as_str()),
            ("public", "default")
        );
        assert_eq!(request.raw, minimal());
    }

    #[test]
    fn filetype_is_case_insensitive_and_inferred_from_the_extension() {
        assert_eq!(
            parse(with("filetype", json!("py"))).unwrap().filetype,
            FileType::Python
        );
        assert_eq!(
            parse(with("filetype", json!("WASM"))).unwrap().filetype,
            FileType::Wasm
        );
        let py = json!({"uuid": "m", "file": "dir/Main.PY"});
        assert_eq!(parse(py).unwrap().filetype, FileType::Python);
        assert_eq!(
            parse(with("filetype", json!("XX"))),
            Err(ProtocolError::UnknownFiletype("XX".into()))
        );
        let unknown = parse(json!({"uuid": "m", "file": "prog.bin"})).unwrap_err();
        assert!(unknown.to_string().contains("'prog.bin'"), "{unknown}");
    }

    #[test]
    fn filename_is_accepted_for_file() {
        let request = parse(json!({"uuid": "m", "filename": "a/b.py"})).unwrap();
        assert_eq!(request.file, "a/b.py");
        assert_eq!(
            parse(json!({"uuid": "m"})),
            Err(ProtocolError::MissingField("data.file".into()))
        );
    }

    #[test]
    fn args_may_be_a_list_or_a_string() {
        let listed = parse(with("args", json!(["x", 2, true]))).unwrap();
        assert_eq!(listed.argv, ["x", "2", "true"]);
        let spaced = parse(with("args", json!("  a  b "))).unwrap();
        assert_eq!(spaced.argv, ["a", "b"]);
        assert!(parse(with("args", json!(""))).unwrap().argv.is_empty());
        assert!(matches!(
            parse(with("args", json!([["nested"]]))),
            Err(ProtocolError::WrongType { field, .. }) if field == "data.args[0]"
        ));
        assert!(matches!(
            parse(with("args", json!(5))),
            Err(ProtocolError::WrongType { field, .. }) if field == "data.args"
        ));
    }

    #[test]
    fn a_name_with_a_control_character_is_refused_naming_the_field() {
        let err = parse(with("name", json!("fake\n[ERROR] injected"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for 'data.name': 'fake\\n[ERROR] injected' contains a control character"
        );
        assert_eq!(
            parse(with("name", json!("ok name"))).unwrap().name,
            "ok name"
        );
    }

    #[test]
    fn silverline_args_object_carries_argv_env_dirs_and_limit() {
        let request = parse(with(
            "args",
            json!({"argv": ["x"], "env": ["K=V=W"], "dirs": ["data//in"], "limit": 60.0,
                   "engine": "interp"}),
        ))
        .unwrap();
        assert_eq!(request.argv, ["x"]);
        assert_eq!(request.env, [("K".to_string(), "V=W".to_string())]);
        assert_eq!(request.dirs, ["data/in"]);
        assert_eq!(request.limit_sec, Some(60.0));
    }

    #[test]
    fn bad_limits_are_rejected() {
        for limit in [json!(0), json!(-5), json!("60")] {
            let err = parse(with("args", json!({ "limit": limit }))).unwrap_err();
            assert!(err.to_string().contains("data.args.limit"), "{err}");
        }
    }

    #[test]
    fn env_may_be_a_list_an_object_or_a_string() {
        let listed = parse(with("env", json!(["A=1", "B="]))).unwrap();
        assert_eq!(
            listed.env,
            [("A".into(), "1".into()), ("B".into(), String::new())]
        );
        let object = parse(with("env", json!({"A": "1", "N": 2}))).unwrap();
        assert_eq!(
            object.env,
            [("A".into(), "1".into()), ("N".into(), "2".into())]
        );
        let spaced = parse(with("env", json!("A=1 B=2"))).unwrap();
        assert_eq!(spaced.env.len(), 2);
    }

    #[test]
    fn env_entries_without_equals_are_invalid() {
        let err = parse(with("env", json!(["NOEQUALS"]))).unwrap_err();
        assert!(matches!(&err, ProtocolError::InvalidValue { field, .. } if field == "data.env"));
        assert!(err.to_string().contains("'NOEQUALS'"), "{err}");
        assert!(parse(with("env", json!(["=x"]))).is_err());
        assert!(parse(with("env", json!({"A": {"x": 1}}))).is_err());
    }

    #[test]
    fn nul_characters_never_reach_a_process() {
        assert!(parse(with("args", json!(["a\u{0}b"]))).is_err());
        assert!(parse(with("env", json!(["A=b\u{0}"]))).is_err());
    }

    #[test]
    fn scene_splits_into_namespace_and_scene() {
        let request = parse(with("scene", json!("alice/lab"))).unwrap();
        assert_eq!(
            (request.namespace.as_str(), request.scene.as_str()),
            ("alice", "lab")
        );
    }

    #[test]
    fn namespace_and_scene_fall_back_to_env() {
        // Not of the form namespace/scene: no slash, or more than one.
        for scene in ["noslash", "a/b/c", "/lab", "alice/"] {
            let mut data = with("env", json!({"NAMESPACE": "bob", "SCENE": "yard"}));
            data["scene"] = json!(scene);
            let request = parse(data).unwrap();
            assert_eq!(
                (request.namespace.as_str(), request.scene.as_str()),
                ("bob", "yard"),
                "{scene}"
            );
        }
        let request = parse(with("scene", json!("a/b/c"))).unwrap();
        assert_eq!(
            (request.namespace.as_str(), request.scene.as_str()),
            ("public", "default")
        );
    }

    #[test]
    fn scene_that_cannot_be_a_topic_level_is_invalid() {
        assert!(parse(with("scene", json!("x+y/lab"))).is_err());
        assert!(parse(with("env", json!(["SCENE=x+y"]))).is_err());
        let unchecked = module_request(with("scene", json!("x+y/lab")).as_object().unwrap(), false);
        assert!(unchecked.is_ok());
    }

    #[test]
    fn uuid_must_be_a_usable_topic_level() {
        assert_eq!(
            parse(json!({"file": "a.wasm"})),
            Err(ProtocolError::MissingField("data.uuid".into()))
        );
        for bad in [json!("a/b"), json!("a+"), json!("#"), json!("")] {
            assert!(matches!(
                parse(with("uuid", bad)),
                Err(ProtocolError::InvalidValue { field, .. }) if field == "data.uuid"
            ));
        }
        let err = parse(with("uuid", json!(42))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 'data.uuid' has the wrong type: expected a string, got the number '42'"
        );
    }

    #[test]
    fn uuid_that_would_name_a_folder_outside_the_module_folder_is_invalid() {
        for bad in [".", ".."] {
            let err = parse(with("uuid", json!(bad))).unwrap_err();
            assert!(
                matches!(&err, ProtocolError::InvalidValue { field, .. } if field == "data.uuid"),
                "{err}"
            );
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
        assert_eq!(parse(with("uuid", json!("...x"))).unwrap().uuid, "...x");
    }

    #[test]
    fn file_and_location_must_stay_in_the_store() {
        assert_eq!(
            parse(with("file", json!("../../etc/passwd"))),
            Err(ProtocolError::UnsafePath("../../etc/passwd".into()))
        );
        assert_eq!(
            parse(with("location", json!("/abs"))),
            Err(ProtocolError::UnsafePath("/abs".into()))
        );
        assert_eq!(
            parse(with("location", json!("store/x/"))).unwrap().location,
            "store/x"
        );
        assert!(matches!(
            parse(with("args", json!({"dirs": ["../up"]}))),
            Err(ProtocolError::UnsafePath(_))
        ));
    }

    const SUM: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_string_is_the_sum_of_the_program_file_by_its_base_name() {
        let data = json!({"uuid": "m", "file": "apps/prog.py", "sha256": SUM.to_uppercase()});
        let request = parse(data).unwrap();
        assert_eq!(
            request.sha256,
            BTreeMap::from([("prog.py".to_string(), SUM.to_string())])
        );
        assert!(parse(minimal()).unwrap().sha256.is_empty());
    }

    #[test]
    fn sha256_object_maps_file_names_to_sums() {
        let request = parse(with(
            "sha256",
            json!({"./lib//util.py": SUM, "hello.wasm": SUM}),
        ))
        .unwrap();
        assert_eq!(
            request.sha256.keys().collect::<Vec<_>>(),
            ["hello.wasm", "lib/util.py"]
        );
    }

    #[test]
    fn sha256_that_is_not_64_hex_digits_is_invalid() {
        let err = parse(with("sha256", json!("abc"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for 'data.sha256': 'abc' is not a sha256: expected 64 hex digits"
        );
        let err = parse(with("sha256", json!({"a.py": "z".repeat(64)}))).unwrap_err();
        assert!(
            matches!(&err, ProtocolError::InvalidValue { field, .. } if field == "data.sha256.a.py"),
            "{err}"
        );
        let err = parse(with("sha256", json!({"a.py": 5}))).unwrap_err();
        assert!(
            matches!(&err, ProtocolError::WrongType { field, .. } if field == "data.sha256.a.py"),
            "{err}"
        );
        assert!(matches!(
            parse(with("sha256", json!(["x"]))),
            Err(ProtocolError::WrongType { field, .. }) if field == "data.sha256"
        ));
        assert!(matches!(
            parse(with("sha256", json!({"../x.py": SUM}))),
            Err(ProtocolError::UnsafePath(_))
        ));
    }

    #[test]
    fn apis_must_be_strings() {
        assert_eq!(parse(with("apis", json!(["wasm"]))).unwrap().apis, ["wasm"]);
        assert!(matches!(
            parse(with("apis", json!("wasm"))),
            Err(ProtocolError::WrongType { field, .. }) if field == "data.apis"
        ));
    }
}
