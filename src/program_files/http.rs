//! HTTP(S) requests to the program store: each within the request timeout, all of one
//! fetch within its total time, and redirects followed only while they stay in the
//! store (same scheme, same server, under the store's base path). A redirect elsewhere
//! is an error: a store must not turn the runtime into a client of other servers, nor
//! bring their answers into a work folder.
//!
//! Not for: what is fetched (`mod.rs`, `folder.rs`) or reading index pages
//! (`listing.rs`).

use std::time::{Duration, Instant};

use super::listing::without_userinfo;
use super::{human_duration, FetchError, FetchLimits};
use crate::protocol::paths::percent_decode;

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// A client for one fetch from the store at `base`.
pub(super) struct StoreClient<'a> {
    agent: ureq::Agent,
    /// The store's base URL, e.g. `http://host:8000/store`.
    base: &'a str,
    timeout: Duration,
    total_timeout: Duration,
    deadline: Instant,
}

impl<'a> StoreClient<'a> {
    /// A client whose requests all end `limits.total_timeout` from now at the latest.
    pub(super) fn new(base: &'a str, limits: &FetchLimits) -> StoreClient<'a> {
        StoreClient {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_connect(Some(limits.timeout))
                .timeout_per_read(Some(limits.timeout))
                .build()
                .into(),
            base,
            timeout: limits.timeout,
            total_timeout: limits.total_timeout,
            deadline: Instant::now() + limits.total_timeout,
        }
    }

    /// GET `url`, following redirects inside the store; anything but a success status
    /// is an error naming the URL (without its credentials). The body must be read
    /// within the same time.
    pub(super) fn get(&self, url: &str) -> Result<ureq::Body, FetchError> {
        let mut current = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.over_time(&current));
            }
            let response = self
                .agent
                .get(&current)
                .config()
                .timeout_global(Some(left.min(self.timeout)))
                .build()
                .call()
                .map_err(|err| self.error(&current, err.to_string()))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response.into_body());
            }
            let location = response
                .headers()
                .get("location")
                .and_then(|value| value.to_str().ok());
            match (status.as_u16(), location) {
                (301 | 302 | 303 | 307 | 308, Some(location)) => {
                    current = self.redirect_target(&current, location)?;
                }
                _ => {
                    let reason = match status.canonical_reason() {
                        Some(text) => format!("{} {}", status.as_u16(), text),
                        None => status.as_u16().to_string(),
                    };
                    return Err(http_error(&current, reason));
                }
            }
        }
        Err(http_error(
            url,
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    /// The error for a request or body read that failed with `reason`: the total
    /// time's if that has run out (a request cut short by it fails with a timeout).
    pub(super) fn error(&self, url: &str, reason: String) -> FetchError {
        if Instant::now() >= self.deadline {
            self.over_time(url)
        } else {
            http_error(url, reason)
        }
    }

    fn over_time(&self, url: &str) -> FetchError {
        http_error(
            url,
            format!(
                "the program's files took longer than {} in all (repository.total_timeout_sec)",
                human_duration(self.total_timeout)
            ),
        )
    }

    /// Where a redirect from `from` to `location` leads, if that stays in the store.
    fn redirect_target(&self, from: &str, location: &str) -> Result<String, FetchError> {
        resolve_in_store(self.base, from, location.trim()).ok_or_else(|| {
            http_error(
                from,
                format!(
                    "redirected to '{}', outside the program store '{}'",
                    without_credentials(location.trim()),
                    without_credentials(self.base)
                ),
            )
        })
    }
}

/// `location` (absolute, scheme-relative, absolute-path or relative) resolved against
/// `from`, if it has the store's scheme and server and a path under `base`'s without
/// `.` or `..` segments. The result keeps `from`'s credentials.
fn resolve_in_store(base: &str, from: &str, location: &str) -> Option<String> {
    let from = Parts::of(from)?;
    let base = Parts::of(base)?;
    let (scheme, authority, path) = if let Some(rest) = location.strip_prefix("//") {
        let (authority, path) = split_authority(rest);
        (from.scheme, authority, path.to_string())
    } else if let Some((scheme, rest)) = location.split_once("://") {
        let (authority, path) = split_authority(rest);
        (scheme, authority, path.to_string())
    } else if location.starts_with('/') {
        (from.scheme, from.authority, location.to_string())
    } else if location.split('/').next().unwrap_or_default().contains(':') {
        // Another scheme without `//` (`mailto:`, `data:`).
        return None;
    } else {
        let from_path = from.path.split(['?', '#']).next().unwrap_or_default();
        let folder = &from_path[..from_path.rfind('/').map_or(0, |slash| slash + 1)];
        (from.scheme, from.authority, format!("{folder}{location}"))
    };

    let same_server = scheme.eq_ignore_ascii_case(base.scheme)
        && without_userinfo(authority).eq_ignore_ascii_case(without_userinfo(base.authority));
    if !same_server || !path.starts_with('/') {
        return None;
    }
    let path = path.split('#').next().unwrap_or_default();
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let resolved = remove_dot_segments(path)?;
    let decoded = |path: &str| -> Vec<String> {
        path.split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| String::from_utf8_lossy(&percent_decode(segment)).into_owned())
            .collect()
    };
    let target = decoded(&resolved);
    // `%2e%2e`, `%2f` or `..;` would be read as `..` or `/` by some servers.
    let tricky = target.iter().any(|segment| {
        let name = segment.split(';').next().unwrap_or_default();
        name == "." || name == ".." || segment.contains(['/', '\\'])
    });
    let store = decoded(base.path.split(['?', '#']).next().unwrap_or_default());
    if tricky || !target.starts_with(&store) {
        return None;
    }
    let query = query.map(|query| format!("?{query}")).unwrap_or_default();
    Some(format!(
        "{}://{}{resolved}{query}",
        from.scheme, from.authority
    ))
}

/// `/a/./b/../c` as `/a/c`; `None` when `..` would climb above the root.
fn remove_dot_segments(path: &str) -> Option<String> {
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    kept.push("");
                }
            }
            ".." => {
                kept.pop()?;
                if last {
                    kept.push("");
                }
            }
            other => kept.push(other),
        }
    }
    Some(format!("/{}", kept.join("/")))
}

/// A URL's scheme, authority (with any credentials) and path (with any query).
struct Parts<'a> {
    scheme: &'a str,
    authority: &'a str,
    path: &'a str,
}

impl<'a> Parts<'a> {
    fn of(url: &'a str) -> Option<Parts<'a>> {
        let (scheme, rest) = url.split_once("://")?;
        let (authority, path) = split_authority(rest);
        Some(Parts {
            scheme,
            authority,
            path,
        })
    }
}

fn split_authority(rest: &str) -> (&str, &str) {
    rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()))
}

pub(super) fn http_error(url: &str, reason: String) -> FetchError {
    FetchError::Http {
        url: without_credentials(url),
        reason,
    }
}

/// A URL fit for messages: `user:password@` in it becomes `***@` (errors go to the log
/// and to the orchestrator).
pub(super) fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://u:pw@Store.example:8000/store";

    fn resolve(from: &str, location: &str) -> Option<String> {
        resolve_in_store(BASE, from, location)
    }

    #[test]
    fn redirects_inside_the_store_resolve_with_the_credentials_kept() {
        let from = "http://u:pw@Store.example:8000/store/apps";
        let expected = "http://u:pw@Store.example:8000/store/apps/";
        assert_eq!(resolve(from, "/store/apps/").as_deref(), Some(expected));
        assert_eq!(
            resolve(from, "http://store.example:8000/store/apps/").as_deref(),
            Some(expected)
        );
        assert_eq!(
            resolve(from, "//store.example:8000/store/apps/").as_deref(),
            Some(expected)
        );
        assert_eq!(
            resolve("http://u:pw@Store.example:8000/store/apps/a.py", "b.py").as_deref(),
            Some("http://u:pw@Store.example:8000/store/apps/b.py")
        );
        assert_eq!(
            resolve(
                "http://u:pw@Store.example:8000/store/apps/a.py",
                "../v2/./a.py"
            )
            .as_deref(),
            Some("http://u:pw@Store.example:8000/store/v2/a.py")
        );
        assert_eq!(
            resolve(from, "/store/apps/x.py?v=2").as_deref(),
            Some("http://u:pw@Store.example:8000/store/apps/x.py?v=2")
        );
    }

    #[test]
    fn redirects_out_of_the_store_are_refused() {
        let from = "http://u:pw@Store.example:8000/store/apps/a.py";
        for location in [
            "http://other.example:8000/store/apps/a.py",
            "http://store.example:9000/store/apps/a.py",
            "https://store.example:8000/store/apps/a.py",
            "//169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "/other/a.py",
            "/store/../etc/passwd",
            "/../../store/apps/a.py",
            "/store/apps/%2e%2e/%2e%2e/etc",
            "/store/apps/a%2fb",
            "/store/apps/..;/..;/etc/passwd",
            "../../x.py",
            "./../../etc/passwd",
            "/storeroom/a.py",
            "mailto:x@y",
        ] {
            assert_eq!(resolve(from, location), None, "{location}");
        }
    }
}
