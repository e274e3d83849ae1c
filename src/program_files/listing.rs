//! Reading HTML directory indexes (nginx `autoindex`, Apache `mod_autoindex`,
//! `python3 -m http.server`): the `href` of every `<a>` tag, and which of them name a
//! file or sub-folder of the listed folder, and which would lead out of the work
//! folder.
//!
//! The scanner is hand-written: an HTML parser crate would weigh more than the rest
//! of the fetcher on a Raspberry Pi, and index pages only need `<a href>`. It takes
//! single, double or no quotes, attributes in any order and any case, comments, and
//! character references (`&amp;`, `&#39;`, `&#x2F;`).
//!
//! Not for: fetching pages or files (`folder.rs`) or names from requests
//! (`protocol::paths`).

use std::collections::HashSet;

pub(super) use crate::protocol::paths::percent_decode;
use crate::protocol::printable;

/// One child of a listed folder, its name decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    File(String),
    Folder(String),
}

/// The folder a page lists: what absolute links must match to be its children.
#[derive(Debug, Clone)]
pub(super) struct FolderUrl {
    scheme: String,
    /// Host and port, lowercase, without credentials.
    host: String,
    /// Decoded path segments, e.g. `["store", "apps"]`.
    segments: Vec<String>,
}

impl FolderUrl {
    /// From the URL the page was fetched from, e.g. `http://host:8000/store/apps/`.
    pub(super) fn parse(url: &str) -> FolderUrl {
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (host, path) = rest.split_at(authority_end);
        FolderUrl {
            scheme: scheme.to_ascii_lowercase(),
            host: without_userinfo(host).to_ascii_lowercase(),
            segments: path
                .split('/')
                .filter(|segment| !segment.is_empty())
                .map(|segment| String::from_utf8_lossy(&percent_decode(segment)).into_owned())
                .collect(),
        }
    }
}

/// The children a directory index page lists, each once, in page order. An entry
/// whose name would leave the work folder is an error carrying that name (printable).
pub(super) fn entries(html: &str, folder: &FolderUrl) -> Result<Vec<Entry>, String> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for href in hrefs(html) {
        let Some(entry) = classify(&href, folder)? else {
            continue;
        };
        let name = match &entry {
            Entry::File(name) | Entry::Folder(name) => name.clone(),
        };
        if seen.insert(name) {
            found.push(entry);
        }
    }
    Ok(found)
}

/// Whether `name` may name one file or folder inside the work folder: not empty,
/// `.` or `..`, no `/`, backslash or control character, at most 255 bytes, and
/// nothing of the kind once percent-decoded again (`%2e%2e`, `%2f`).
pub(super) fn is_safe_entry_name(name: &str) -> bool {
    let plain = |name: &str| {
        !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\'])
            && !name.chars().any(char::is_control)
    };
    name.len() <= 255 && plain(name) && plain(&String::from_utf8_lossy(&percent_decode(name)))
}

/// What one `href` is: a child (`Some`), something else to skip (`None`: parent and
/// sort links, other hosts, other folders, deeper paths), or an error naming a child
/// that would leave the work folder.
fn classify(href: &str, folder: &FolderUrl) -> Result<Option<Entry>, String> {
    let href = href.trim();
    let href = href.split('#').next().unwrap_or_default();
    if href.is_empty() || href.contains('?') {
        return Ok(None);
    }

    let remainder = if let Some(rest) = href.strip_prefix("//") {
        under_folder(&folder.scheme, rest, folder)
    } else if let Some((scheme, rest)) = split_scheme(href) {
        match rest.strip_prefix("//") {
            Some(rest) => under_folder(&scheme, rest, folder),
            None => None,
        }
    } else if let Some(path) = href.strip_prefix('/') {
        path_under_folder(path, folder)
    } else {
        Some(href.to_string())
    };
    let Some(remainder) = remainder else {
        return Ok(None);
    };
    child(&remainder)
}

/// A relative reference (still percent-encoded) as a child of the listed folder.
fn child(remainder: &str) -> Result<Option<Entry>, String> {
    let mut relative = remainder;
    while let Some(rest) = relative.strip_prefix("./") {
        relative = rest;
    }
    if matches!(relative, "" | "." | ".." | "../") {
        return Ok(None);
    }

    let (body, is_folder) = match relative.strip_suffix('/') {
        Some(body) => (body, true),
        None => (relative, false),
    };
    let mut names = Vec::new();
    // `a//b` is `a/b`, as web servers read it.
    for segment in body.split('/').filter(|segment| !segment.is_empty()) {
        let decoded = percent_decode(segment);
        let name = String::from_utf8(decoded)
            .map_err(|err| printable(&String::from_utf8_lossy(err.as_bytes())))?;
        if !is_safe_entry_name(&name) {
            return Err(printable(&name));
        }
        names.push(name);
    }
    if names.len() != 1 {
        log::debug!(
            "skipping link '{}' deeper than the listed folder",
            printable(remainder)
        );
        return Ok(None);
    }
    let name = names.remove(0);
    Ok(Some(if is_folder {
        Entry::Folder(name)
    } else {
        Entry::File(name)
    }))
}

/// `rest` is `host/path` of an absolute link: its path relative to the folder when
/// the link points into it on the same server.
fn under_folder(scheme: &str, rest: &str, folder: &FolderUrl) -> Option<String> {
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (host, path) = rest.split_at(authority_end);
    let same_server = scheme.eq_ignore_ascii_case(&folder.scheme)
        && without_userinfo(host).eq_ignore_ascii_case(&folder.host);
    if !same_server {
        return None;
    }
    path_under_folder(path.strip_prefix('/')?, folder)
}

/// `path` (after its leading `/`) relative to the folder, if it lies inside it.
fn path_under_folder(path: &str, folder: &FolderUrl) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() <= folder.segments.len() {
        return None;
    }
    let (head, tail) = segments.split_at(folder.segments.len());
    let same = head
        .iter()
        .zip(&folder.segments)
        .all(|(segment, expected)| String::from_utf8_lossy(&percent_decode(segment)) == **expected);
    same.then(|| tail.join("/"))
}

fn split_scheme(href: &str) -> Option<(String, &str)> {
    let colon = href.find(':')?;
    let scheme = &href[..colon];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then(|| (scheme.to_ascii_lowercase(), &href[colon + 1..]))
}

/// Host and port of an authority, without credentials.
pub(super) fn without_userinfo(authority: &str) -> &str {
    match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    }
}

/// The `href` of every `<a>` tag, character references decoded.
pub(super) fn hrefs(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(offset) = html[pos..].find('<') {
        let start = pos + offset + 1;
        if html[start..].starts_with("!--") {
            pos = html[start..]
                .find("-->")
                .map_or(html.len(), |end| start + end + 3);
            continue;
        }
        let name_end = html[start..]
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .map_or(html.len(), |end| start + end);
        if !html[start..name_end].eq_ignore_ascii_case("a") {
            pos = name_end.max(start);
            continue;
        }
        let (href, end) = tag_href(html, name_end);
        if let Some(href) = href {
            found.push(decode_references(href));
        }
        pos = end;
    }
    found
}

/// Reads the attributes of a tag from `pos` to its `>`; returns the first `href`
/// value and where the tag ends.
fn tag_href(html: &str, mut pos: usize) -> (Option<&str>, usize) {
    let bytes = html.as_bytes();
    let mut href = None;
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b'/') {
            pos += 1;
        }
        if pos >= bytes.len() {
            return (href, bytes.len());
        }
        if bytes[pos] == b'>' {
            return (href, pos + 1);
        }

        let name_start = pos;
        while pos < bytes.len() && !b" \t\r\n\x0c=>/".contains(&bytes[pos]) {
            pos += 1;
        }
        if pos == name_start {
            // A stray '=': step over it.
            pos += 1;
            continue;
        }
        let name = &html[name_start..pos];
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() || bytes[pos] != b'=' {
            continue;
        }
        pos += 1;
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let (value, next) = attribute_value(html, pos);
        pos = next;
        if href.is_none() && name.eq_ignore_ascii_case("href") {
            href = Some(value);
        }
    }
}

fn attribute_value(html: &str, pos: usize) -> (&str, usize) {
    let bytes = html.as_bytes();
    match bytes.get(pos) {
        Some(&quote @ (b'"' | b'\'')) => {
            let start = pos + 1;
            match html[start..].find(quote as char) {
                Some(len) => (&html[start..start + len], start + len + 1),
                None => (&html[start..], html.len()),
            }
        }
        _ => {
            let end = html[pos..]
                .find(|c: char| c.is_ascii_whitespace() || c == '>')
                .map_or(html.len(), |len| pos + len);
            (&html[pos..end], end)
        }
    }
}

/// Longest character reference read, `&` included and `;` not (`&#x10FFFF` is 9).
const MAX_REFERENCE: usize = 10;

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;` and numeric references; anything
/// else is left as written.
fn decode_references(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // A reference is short: look for its `;` in the next few bytes only, so text
        // full of `&` is read in linear time.
        let end = rest.bytes().take(MAX_REFERENCE + 1).position(|b| b == b';');
        let decoded = end.and_then(|end| {
            let reference = &rest[1..end];
            let c = match reference {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => numeric_reference(reference),
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn numeric_reference(reference: &str) -> Option<char> {
    let digits = reference.strip_prefix('#')?;
    let code = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    char::from_u32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = r#"<html>
<head><title>Index of /store/apps/</title></head>
<body>
<h1>Index of /store/apps/</h1><hr><pre><a href="../">../</a>
<a href="lib/">lib/</a>                                               08-Mar-2024 10:12                   -
<a href="my%20prog.py">my prog.py</a>                                         08-Mar-2024 10:12                  52
<a href="requirements.txt">requirements.txt</a>                                   08-Mar-2024 10:12                  12
</pre><hr></body>
</html>
"#;

    const APACHE: &str = r#"<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head>
  <title>Index of /store/apps</title>
 </head>
 <body>
<h1>Index of /store/apps</h1>
  <table>
   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>
   <tr><th colspan="5"><hr></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/store/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><a href="lib/"><img src="/icons/folder.gif" alt="[DIR]"></a></td><td><a href="lib/">lib/</a></td><td align="right">2024-03-08 10:12  </td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/text.gif" alt="[TXT]"></td><td><a href="a&amp;b.py">a&amp;b.py</a></td><td align="right">2024-03-08 10:12  </td><td align="right"> 52 </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/text.gif" alt="[TXT]"></td><td><a href="my%20prog.py">my prog.py</a></td><td align="right">2024-03-08 10:12  </td><td align="right"> 52 </td><td>&nbsp;</td></tr>
   <tr><th colspan="5"><hr></th></tr>
</table>
<address>Apache/2.4.57 (Debian) Server at localhost Port 80</address>
</body></html>
"#;

    const PYTHON: &str = r#"<!DOCTYPE HTML>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Directory listing for /store/apps/</title>
</head>
<body>
<h1>Directory listing for /store/apps/</h1>
<hr>
<ul>
<li><a href="a%26b.py">a&amp;b.py</a></li>
<li><a href="lib/">lib/</a></li>
<li><a href="link%40">link@</a></li>
<li><a href="%C3%A9t%C3%A9.py">été.py</a></li>
</ul>
<hr>
</body>
</html>
"#;

    fn folder() -> FolderUrl {
        FolderUrl::parse("http://alice:pw@Example.org:8000/store/apps/")
    }

    fn file(name: &str) -> Entry {
        Entry::File(name.into())
    }

    fn dir(name: &str) -> Entry {
        Entry::Folder(name.into())
    }

    #[test]
    fn nginx_index_lists_files_and_folders_without_the_parent() {
        assert_eq!(
            entries(NGINX, &folder()).unwrap(),
            [dir("lib"), file("my prog.py"), file("requirements.txt")]
        );
    }

    #[test]
    fn apache_index_skips_sort_links_and_parent_directory_and_lists_each_once() {
        assert_eq!(
            entries(APACHE, &folder()).unwrap(),
            [dir("lib"), file("a&b.py"), file("my prog.py")]
        );
    }

    #[test]
    fn python_index_names_are_percent_decoded() {
        assert_eq!(
            entries(PYTHON, &folder()).unwrap(),
            [file("a&b.py"), dir("lib"), file("link@"), file("été.py")]
        );
    }

    #[test]
    fn hrefs_are_found_in_any_quoting_case_and_attribute_order() {
        let html = r#"<A class=x HREF=one.py>1</A> <a title='t>' href='two.py'>
            <a
              href = "three&#46;py" id="y"><!-- <a href="hidden.py"> --><a name=x>
            <link href="style.css"><abbr href="no.py"><a href="&#x66;our.py&amp;x">"#;
        assert_eq!(hrefs(html), ["one.py", "two.py", "three.py", "four.py&x"]);
    }

    #[test]
    fn links_elsewhere_are_skipped() {
        let html = r##"<a href="https://other.org/store/apps/x.py">x</a>
            <a href="http://example.org:8000/other/y.py">y</a>
            <a href="//other.org/store/apps/z.py">z</a>
            <a href="/store/">up</a> <a href="/elsewhere/w.py">w</a>
            <a href="mailto:me@example.org">mail</a> <a href="#top">top</a>
            <a href="./">self</a> <a href="lib/deeper.py">deep</a> <a href="x.py?download">q</a>"##;
        assert_eq!(entries(html, &folder()).unwrap(), []);
    }

    #[test]
    fn absolute_links_into_the_listed_folder_are_children() {
        let html = r#"<a href="/store/apps/abs.py">a</a>
            <a href="http://EXAMPLE.org:8000/store/apps/full.py">f</a>
            <a href="/store/apps/sub/">s</a> <a href="/store/apps/">self</a>"#;
        assert_eq!(
            entries(html, &folder()).unwrap(),
            [file("abs.py"), file("full.py"), dir("sub")]
        );
    }

    #[test]
    fn names_that_would_leave_the_work_folder_are_refused() {
        for (href, shown) in [
            ("%2e%2e/", ".."),
            ("%2E%2E%2Fetc%2Fpasswd", "../etc/passwd"),
            ("..%2f..%2fsecret", "../../secret"),
            ("/store/apps/../../etc/passwd", ".."),
            ("lib/../../x.py", ".."),
            ("a%5cb.py", "a\\b.py"),
            ("a%00.py", "a\\u{0}.py"),
            ("%252e%252e", "%2e%2e"),
            ("x%2fy.py", "x/y.py"),
        ] {
            let html = format!(r#"<a href="ok.py">ok</a><a href="{href}">bad</a>"#);
            assert_eq!(entries(&html, &folder()), Err(shown.to_string()), "{href}");
        }
    }

    #[test]
    fn entry_names_are_checked_for_the_work_folder() {
        for good in ["prog.py", ".hidden", "a b", "été", "100%"] {
            assert!(is_safe_entry_name(good), "{good}");
        }
        let long = "x".repeat(256);
        for bad in [
            "", ".", "..", "a/b", "a\\b", "a\nb", "%2e%2e", "a%2Fb", &long,
        ] {
            assert!(!is_safe_entry_name(bad), "{bad}");
        }
    }

    #[test]
    fn doubled_slashes_in_links_read_as_one() {
        let html = r#"<a href="lib//">l</a> <a href="/store/apps//abs.py">a</a>
            <a href="http://example.org:8000/store/apps//sub//">s</a> <a href="a//b.py">deep</a>"#;
        assert_eq!(
            entries(html, &folder()).unwrap(),
            [dir("lib"), file("abs.py"), dir("sub")]
        );
    }

    #[test]
    fn ampersands_without_a_reference_are_kept_as_written() {
        let html = r#"<a href="a&b&amp;c&#59;&#xZZ;&longname;&">x</a>"#;
        assert_eq!(hrefs(html), ["a&b&c;&#xZZ;&longname;&"]);

        // A page of a megabyte of `&` reads in linear time (it once took half a
        // minute of CPU, out of reach of the fetch's timeout and of a delete).
        let ampersands = "&".repeat(1 << 20);
        let found = hrefs(&format!("<a href=\"{ampersands};\">x</a>"));
        assert_eq!(found, [format!("{ampersands};")]);
    }

    #[test]
    fn percent_decoding_leaves_stray_percent_signs() {
        assert_eq!(percent_decode("a%20b%zz%4"), b"a b%zz%4");
        assert_eq!(percent_decode("%"), b"%");
    }
}
