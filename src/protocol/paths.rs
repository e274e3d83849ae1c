//! Safety checks for paths that come from the wire (`file`, `location`, WASI `dirs`):
//! a path accepted here stays inside the folder it is joined to, whether that folder
//! is a local directory or a URL of the program store.
//!
//! Not for: touching the file system or building URLs (`program_files` does that).

use super::{printable, ProtocolError};

/// Longest accepted path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest accepted path component, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// How many rounds of percent-decoding are checked (catches `%252e%252e`).
const DECODE_ROUNDS: usize = 3;
/// How much of an offending path an error message quotes.
const QUOTE_BYTES: usize = 200;

/// Check that `s` is a relative path that cannot leave the folder it is joined to,
/// and return it normalised (`a//b/./c/` becomes `a/b/c`).
///
/// Rejected: absolute paths, `..` components, a leading `~`, backslashes, control
/// characters (NUL included), percent-encoded separators, dots or control characters
/// (`%2e%2e`, `%2f`, `%00`, also double-encoded), paths over 1024 bytes or with a
/// component over 255 bytes, and paths with no component at all.
pub fn safe_relative_path(s: &str) -> Result<String, ProtocolError> {
    let unsafe_path = || ProtocolError::UnsafePath(quote(s));

    if s.len() > MAX_PATH_BYTES {
        return Err(ProtocolError::PathTooLong {
            path: quote(s),
            limit: MAX_PATH_BYTES,
        });
    }
    if s.starts_with('/') || s.starts_with('~') || s.contains('\\') {
        return Err(unsafe_path());
    }
    if s.chars().any(char::is_control) {
        return Err(unsafe_path());
    }

    let mut components = Vec::new();
    for component in s.split('/') {
        if component.is_empty() || component == "." {
            continue;
        }
        if component.len() > MAX_COMPONENT_BYTES {
            return Err(ProtocolError::PathTooLong {
                path: quote(s),
                limit: MAX_COMPONENT_BYTES,
            });
        }
        let first = components.is_empty();
        if !component_is_safe(component, first) || !decoded_component_is_safe(component, first) {
            return Err(unsafe_path());
        }
        components.push(component);
    }

    if components.is_empty() {
        return Err(ProtocolError::InvalidValue {
            field: "path".into(),
            reason: format!("'{s}' names no file or folder"),
        });
    }
    Ok(components.join("/"))
}

fn component_is_safe(component: &str, first: bool) -> bool {
    if component == ".." || (first && component.starts_with('~')) {
        return false;
    }
    !component
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// A component must stay safe after every round of percent-decoding a server or a
/// later stage might apply; a decoded `.` is as bad as a literal one.
fn decoded_component_is_safe(component: &str, first: bool) -> bool {
    let mut current = component.to_string();
    for _ in 0..DECODE_ROUNDS {
        if !current.contains('%') {
            return true;
        }
        let decoded = percent_decode_text(&current);
        if decoded == current {
            return true;
        }
        if decoded.is_empty() || decoded == "." || !component_is_safe(&decoded, first) {
            return false;
        }
        current = decoded;
    }
    !current.contains('%') || percent_decode_text(&current) == current
}

/// `%XX` sequences to bytes; malformed ones are kept as they are. Shared with the
/// program store's index pages.
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// `percent_decode` as text: bytes that do not form UTF-8 become U+FFFD, which is
/// harmless for the checks above.
fn percent_decode_text(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s)).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Shorten a value quoted in an error message, on a character boundary.
fn quote(s: &str) -> String {
    if s.len() <= QUOTE_BYTES {
        return printable(s);
    }
    let mut end = QUOTE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", printable(&s[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_unsafe(s: &str) -> bool {
        matches!(safe_relative_path(s), Err(ProtocolError::UnsafePath(_)))
    }

    #[test]
    fn plain_relative_paths_are_accepted_unchanged() {
        assert_eq!(
            safe_relative_path("helloworld.wasm").unwrap(),
            "helloworld.wasm"
        );
        assert_eq!(
            safe_relative_path("wasm/apps/hello.wasm").unwrap(),
            "wasm/apps/hello.wasm"
        );
        assert_eq!(safe_relative_path("my file.py").unwrap(), "my file.py");
        assert_eq!(safe_relative_path("a..b/c...d").unwrap(), "a..b/c...d");
        assert_eq!(safe_relative_path("dir/~backup").unwrap(), "dir/~backup");
        assert_eq!(
            safe_relative_path("ünïcode/πρόγραμμα.py").unwrap(),
            "ünïcode/πρόγραμμα.py"
        );
    }

    #[test]
    fn empty_and_dot_components_are_normalised_away() {
        assert_eq!(safe_relative_path("a//b").unwrap(), "a/b");
        assert_eq!(safe_relative_path("./a/./b/").unwrap(), "a/b");
        assert_eq!(safe_relative_path("programs/").unwrap(), "programs");
    }

    #[test]
    fn paths_that_escape_the_store_are_unsafe() {
        for path in [
            "../../etc/passwd",
            "a/../../b",
            "..",
            "a/..",
            "/abs",
            "/etc/passwd",
            "~",
            "~/x",
            "~root/x",
            "a\\b",
            "..\\x",
        ] {
            assert!(is_unsafe(path), "{path:?} should be unsafe");
        }
    }

    #[test]
    fn control_characters_are_unsafe() {
        for path in ["a\0b", "a\nb", "tab\there", "del\u{7f}"] {
            assert!(is_unsafe(path), "{path:?} should be unsafe");
        }
    }

    #[test]
    fn percent_encoded_escapes_are_unsafe() {
        for path in [
            "%2e%2e/x",
            "%2E%2E/x",
            "a/%2e%2e/%2e%2e/etc/passwd",
            ".%2e/x",
            "a%2fb",
            "a%2F..%2Fb",
            "..%5cx",
            "a%00b",
            "%252e%252e/x",
            "%25252e%25252e/x",
            "%7e/x",
            "%2e",
        ] {
            assert!(is_unsafe(path), "{path:?} should be unsafe");
        }
    }

    #[test]
    fn harmless_percent_sequences_are_accepted() {
        assert_eq!(safe_relative_path("my%20file.py").unwrap(), "my%20file.py");
        assert_eq!(safe_relative_path("100%").unwrap(), "100%");
        assert_eq!(safe_relative_path("a%zzb").unwrap(), "a%zzb");
        assert_eq!(safe_relative_path("x%2").unwrap(), "x%2");
    }

    #[test]
    fn overlong_paths_are_rejected_with_the_limit() {
        let long_component = "a".repeat(256);
        assert_eq!(
            safe_relative_path(&long_component),
            Err(ProtocolError::PathTooLong {
                path: quote(&long_component),
                limit: 255
            })
        );
        let long_path = vec!["abc"; 300].join("/");
        match safe_relative_path(&long_path) {
            Err(ProtocolError::PathTooLong { path, limit }) => {
                assert_eq!(limit, 1024);
                assert!(path.len() < 210, "quoted path is shortened");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(safe_relative_path(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn paths_naming_nothing_are_invalid() {
        for path in ["", ".", "./", "./."] {
            assert!(
                matches!(
                    safe_relative_path(path),
                    Err(ProtocolError::InvalidValue { .. })
                ),
                "{path:?} should be invalid"
            );
        }
    }

    #[test]
    fn unsafe_path_error_quotes_the_value() {
        let err = safe_relative_path("../../etc/passwd").unwrap_err();
        assert!(err.to_string().contains("'../../etc/passwd'"), "{err}");
    }
}
