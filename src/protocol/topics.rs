//! Topic templates and topic filters: expanding `{placeholder}` templates from the
//! dialect config, matching MQTT filters (`+`, `#`), and checking that a value from
//! the wire can be put into a topic.
//!
//! Not for: choosing which template a message uses (the builders in `outbound` do).

use super::printable;

/// Values for the placeholders of a topic template. Module values are empty when a
/// template is expanded for the runtime alone.
#[derive(Debug, Clone, Default)]
pub struct TopicVars<'a> {
    pub realm: &'a str,
    pub namespace: &'a str,
    pub runtime_uuid: &'a str,
    pub runtime_name: &'a str,
    pub module_uuid: &'a str,
    pub module_namespace: &'a str,
    pub module_scene: &'a str,
}

/// Placeholders that a module request fills in.
pub const MODULE_PLACEHOLDERS: [&str; 3] =
    ["{module_uuid}", "{module_namespace}", "{module_scene}"];

/// Replace every known `{placeholder}` of `template`; unknown ones are left as written
/// (the config loader is the place to reject them).
pub fn expand(template: &str, vars: &TopicVars) -> String {
    let pairs = [
        ("{realm}", vars.realm),
        ("{namespace}", vars.namespace),
        ("{runtime_uuid}", vars.runtime_uuid),
        ("{runtime_name}", vars.runtime_name),
        ("{module_uuid}", vars.module_uuid),
        ("{module_namespace}", vars.module_namespace),
        ("{module_scene}", vars.module_scene),
    ];

    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match pairs.iter().find(|(key, _)| tail.starts_with(key)) {
            Some((key, value)) => {
                out.push_str(value);
                rest = &tail[key.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Does a topic filter (with MQTT `+` and `#` wildcards) match a topic name?
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    // Wildcards at the first level never match topics starting with '$' (MQTT 4.7.2).
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }

    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            literal => {
                if topic_levels.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

/// Is this a filter with wildcards, i.e. a topic shared with other runtimes?
pub fn is_wildcard(filter: &str) -> bool {
    filter.split('/').any(|level| level == "+" || level == "#")
}

/// Why a value cannot be one level of a topic, if it cannot.
pub fn topic_level_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty".into());
    }
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '/' | '+' | '#') || c.is_control())
    {
        return Some(format!(
            "'{}' contains {:?}, which cannot appear in an MQTT topic level",
            printable(value),
            c
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TopicVars<'static> {
        TopicVars {
            realm: "realm",
            namespace: "public",
            runtime_uuid: "rt-1",
            runtime_name: "node1",
            module_uuid: "mod-1",
            module_namespace: "alice",
            module_scene: "lab",
        }
    }

    #[test]
    fn every_placeholder_is_expanded() {
        assert_eq!(
            expand(
                "{realm}/{namespace}/{runtime_uuid}/{runtime_name}/{module_uuid}/{module_namespace}/{module_scene}",
                &vars()
            ),
            "realm/public/rt-1/node1/mod-1/alice/lab"
        );
    }

    #[test]
    fn wildcards_and_unknown_placeholders_are_kept() {
        assert_eq!(expand("{realm}/s/+/+/p/+/+", &vars()), "realm/s/+/+/p/+/+");
        assert_eq!(expand("{realm}/{other}/{", &vars()), "realm/{other}/{");
    }

    #[test]
    fn filters_match_like_a_broker() {
        assert!(filter_matches(
            "realm/s/+/+/p/+/+",
            "realm/s/ns/sc/p/client/rt"
        ));
        assert!(!filter_matches("realm/s/+/+/p/+/+", "realm/s/ns/sc/p/mod"));
        assert!(!filter_matches(
            "realm/s/+/+/p/+/+",
            "realm/s/ns/sc/p/mod/-/stdout"
        ));
        assert!(filter_matches(
            "realm/proc/control/rt",
            "realm/proc/control/rt"
        ));
        assert!(!filter_matches(
            "realm/proc/control/rt",
            "realm/proc/control/rt2"
        ));
        assert!(!filter_matches(
            "realm/proc/control/rt",
            "realm/proc/control"
        ));
        assert!(filter_matches("realm/#", "realm/a/b"));
        assert!(filter_matches("realm/#", "realm"));
        assert!(filter_matches("a/+", "a/"));
        assert!(!filter_matches("+/x", "$SYS/x"));
    }

    #[test]
    fn wildcard_filters_are_recognised() {
        assert!(is_wildcard("realm/s/+/+/p/+/+"));
        assert!(is_wildcard("realm/#"));
        assert!(!is_wildcard("realm/proc/control/rt"));
        assert!(!is_wildcard("realm/a+b"));
    }

    #[test]
    fn topic_levels_reject_separators_and_wildcards() {
        assert!(topic_level_problem("a758ac2a-1f").is_none());
        assert!(topic_level_problem("").is_some());
        for bad in ["a/b", "a+", "#", "a\nb"] {
            let problem = topic_level_problem(bad).unwrap();
            assert!(problem.contains("MQTT topic"), "{problem}");
        }
    }
}
