//! Checksums of program files: sha256 as lowercase hex, the `SHA256SUMS` lists a store
//! may keep beside the programs (the format of `sha256sum`), and the comparison of
//! fetched files against them and against the sums a create request carries.
//!
//! Not for: hashing while copying (`copy_bounded` does that with the same digest) or
//! checking a request's checksum values (`protocol::request` does).

use std::collections::BTreeMap;

use super::FetchError;

/// Name of the checksum list a store folder may hold.
pub(super) const SUMS_FILE: &str = "SHA256SUMS";

/// How many hex digits of a sum an error message shows.
const SHOWN_DIGITS: usize = 12;

/// Lowercase hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `actual` must equal `expected` (both hex, any case); `origin` says who expected it.
pub(super) fn verify_one(
    file: &str,
    actual: &str,
    expected: &str,
    origin: &str,
) -> Result<(), FetchError> {
    if actual.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    Err(FetchError::ChecksumMismatch {
        file: file.to_string(),
        actual: shorten(actual),
        expected: shorten(expected),
        origin: origin.to_string(),
    })
}

/// Every `(name, sum)` in `expected` must name a fetched file (a key of `fetched`,
/// relative to the same folder) with that sum. `shown` turns a name into the path a
/// message shows.
pub(super) fn verify_all<'a>(
    fetched: &BTreeMap<String, String>,
    expected: impl IntoIterator<Item = (&'a str, &'a str)>,
    origin: &str,
    shown: impl Fn(&str) -> String,
) -> Result<(), FetchError> {
    for (name, sum) in expected {
        let Some(actual) = fetched.get(name) else {
            return Err(FetchError::ChecksumForMissingFile {
                file: shown(name),
                origin: origin.to_string(),
            });
        };
        verify_one(&shown(name), actual, sum, origin)?;
    }
    Ok(())
}

/// Parse a `sha256sum` listing: `<64 hex>  <name>` or `<64 hex> *<name>` a line;
/// blank lines and `#` comments are skipped. Names are relative to the list's own
/// folder, `./` prefixes dropped. `shown` names the list in errors.
pub(super) fn parse_sums(text: &str, shown: &str) -> Result<Vec<(String, String)>, FetchError> {
    let mut sums = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let bad = |reason: &str| FetchError::BadChecksumList {
            file: shown.to_string(),
            line: index + 1,
            reason: reason.to_string(),
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('\\') {
            return Err(bad("escaped file names are not supported"));
        }
        let (sum, rest) = line.split_at_checked(64).ok_or_else(|| bad(NOT_A_SUM))?;
        if !is_sha256_hex(sum) {
            return Err(bad(NOT_A_SUM));
        }
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(|| bad("expected two spaces or ' *' between sum and file name"))?;
        let name = name.trim_start_matches("./");
        if name.is_empty() {
            return Err(bad("no file name"));
        }
        sums.push((name.to_string(), sum.to_ascii_lowercase()));
    }
    Ok(sums)
}

const NOT_A_SUM: &str = "expected a sha256 of 64 hex digits at the start";

/// 64 hex digits, either case.
pub(super) fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|byte| byte.is_ascii_hexdigit())
}

fn shorten(sum: &str) -> String {
    sum.chars()
        .take(SHOWN_DIGITS)
        .flat_map(char::to_lowercase)
        .collect()
}

/// The sha256 of `bytes`, as lowercase hex (for tests and small files).
#[cfg(test)]
pub(super) fn sha256_of(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_nothing_is_the_well_known_sum() {
        assert_eq!(sha256_of(b""), EMPTY);
        assert_eq!(
            sha256_of(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sums_lists_read_text_and_binary_lines_and_skip_comments() {
        let text = format!(
            "# made by sha256sum\n{EMPTY}  prog.py\r\n\n{} *lib/util.py\n{EMPTY} *./data.bin\n",
            EMPTY.to_uppercase()
        );
        let sums = parse_sums(&text, "apps/SHA256SUMS").unwrap();
        assert_eq!(
            sums,
            [
                ("prog.py".to_string(), EMPTY.to_string()),
                ("lib/util.py".to_string(), EMPTY.to_string()),
                ("data.bin".to_string(), EMPTY.to_string()),
            ]
        );
    }

    #[test]
    fn malformed_sums_lists_name_the_line() {
        for (text, reason) in [
            ("abc  prog.py", NOT_A_SUM),
            (&format!("{}  x", "g".repeat(64)) as &str, NOT_A_SUM),
            (&format!("{EMPTY} x"), "expected two spaces"),
            (&format!("{EMPTY}  "), "no file name"),
            (&format!("\\{EMPTY}  a\\nb"), "escaped file names"),
        ] {
            let err = parse_sums(&format!("\n{text}\n"), "SHA256SUMS").unwrap_err();
            let shown = err.to_string();
            assert!(
                shown.starts_with("checksum list 'SHA256SUMS', line 2: "),
                "{shown}"
            );
            assert!(shown.contains(reason), "{shown}");
        }
    }

    #[test]
    fn a_mismatch_names_the_file_and_both_sums_shortened() {
        let err = verify_one("apps/prog.py", EMPTY, &"AB".repeat(32), "the request").unwrap_err();
        assert_eq!(
            err.to_string(),
            "program file 'apps/prog.py' has sha256 'e3b0c44298fc...', \
             but the request gives 'abababababab...'"
        );
        assert!(verify_one("x", EMPTY, &EMPTY.to_uppercase(), "the request").is_ok());
    }
}
