//! Validation of loaded settings: ranges, choices, sizes that must fit what carries
//! them; errors name the key, its value and the layer that set it.
//!
//! Not for: type errors (caught while layering) or file existence (`paths`).

use super::layers::{origin_of, Origins};
use super::paths::parse_store;
use super::settings::{LauncherEntry, LauncherKind};
use super::{ConfigError, Settings};
use crate::protocol::FileType;

/// Most bytes one byte of output becomes in a JSON string (`\u00XX`).
const JSON_GROWTH: usize = 6;
/// Longest duration setting, in seconds: far beyond any sensible interval, and well
/// inside what a timer can hold (a larger one would stop the runtime at start).
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;
/// Room in an MQTT packet for the topic and the fixed and variable headers.
const PACKET_OVERHEAD: usize = 4096;

impl Settings {
    /// Validate; returns the warnings (problems that do not stop the runtime).
    pub(super) fn check(&self, c: &Checker) -> Result<Vec<String>, ConfigError> {
        c.ensure(parse_level(&self.loglevel).is_some(), "loglevel", || {
            format!(
                "'{}' is not a log level (CRITICAL, ERROR, WARNING, INFO, DEBUG)",
                self.loglevel
            )
        })?;
        self.check_runtime(c)?;
        self.check_mqtt(c)?;
        self.check_limits(c)?;
        self.check_dialect(c)?;
        self.check_launchers(c)?;

        let mut warnings = Vec::new();
        if !self.mqtt.ssl && self.mqtt.ca_file.is_some() {
            warnings.push("'mqtt.ca_file' is set but 'mqtt.ssl' is false: not used".into());
        }
        let containers = self.launcher.py.kind() == Some(LauncherKind::Container);
        let stats_interval = self.container_stats_interval_sec();
        let timeout = self.runtime.inactivity_timeout_sec;
        if containers && timeout > 0.0 && timeout < 3.0 * stats_interval {
            warnings.push(format!(
                "'runtime.inactivity_timeout_sec' '{timeout}' is short beside the {stats_interval} s \
                 between container stats samples: a busy container may look idle; use at least \
                 {}",
                3.0 * stats_interval
            ));
        }
        if !self.mqtt.ssl && self.mqtt.insecure {
            warnings.push("'mqtt.insecure' is set but 'mqtt.ssl' is false: not used".into());
        }
        Ok(warnings)
    }

    fn check_runtime(&self, c: &Checker) -> Result<(), ConfigError> {
        let r = &self.runtime;
        c.not_empty(&r.name, "runtime.name")?;
        c.not_empty(&r.realm, "runtime.realm")?;
        if let Some(uuid) = &r.uuid {
            let ok = uuid::Uuid::parse_str(uuid).is_ok();
            c.ensure(ok, "runtime.uuid", || format!("'{uuid}' is not a uuid"))?;
        }
        c.ensure(r.reg_attempts >= -1, "runtime.reg_attempts", || {
            format!(
                "'{}' must be -1 (do not register), 0 (keep trying) or a number of attempts",
                r.reg_attempts
            )
        })?;
        c.positive(r.reg_timeout_seconds, "runtime.reg_timeout_seconds")?;
        c.positive(r.ka_interval_sec, "runtime.ka_interval_sec")?;
        // More than one keepalive a second only floods the orchestrator.
        c.ensure(r.ka_interval_sec >= 1.0, "runtime.ka_interval_sec", || {
            format!("'{}' must be at least 1 second", r.ka_interval_sec)
        })?;
        c.non_negative(r.inactivity_timeout_sec, "runtime.inactivity_timeout_sec")?;
        c.non_negative(r.inactivity_cpu_percent, "runtime.inactivity_cpu_percent")?;
        c.non_negative(
            r.inactivity_net_bytes_sec,
            "runtime.inactivity_net_bytes_sec",
        )?;
        c.non_negative(
            r.inactivity_blk_bytes_sec,
            "runtime.inactivity_blk_bytes_sec",
        )?;
        let interval = "runtime.inactivity_check_interval_sec";
        c.non_negative(r.inactivity_check_interval_sec, interval)?;
        if r.inactivity_timeout_sec > 0.0 {
            c.positive(r.inactivity_check_interval_sec, interval)?;
        }
        Ok(())
    }

    /// The launcher table: each filetype names a launcher that can run it, and a
    /// container launcher has what it needs to start containers.
    fn check_launchers(&self, c: &Checker) -> Result<(), ConfigError> {
        for filetype in [FileType::Python, FileType::Wasm] {
            let entry = self.launcher.entry(filetype);
            let section = format!("launcher.{}", filetype.as_str().to_ascii_lowercase());
            let kind = entry.kind();
            let class_key = format!("{section}.class");
            c.ensure(kind.is_some(), &class_key, || {
                format!(
                    "'{}' is not a launcher (container, wasm or disabled)",
                    entry.class
                )
            })?;
            let fits = match (filetype, kind) {
                (_, Some(LauncherKind::Disabled)) => true,
                (FileType::Python, kind) => kind == Some(LauncherKind::Container),
                (FileType::Wasm, kind) => kind == Some(LauncherKind::Wasm),
            };
            c.ensure(fits, &class_key, || {
                format!(
                    "'{}' cannot run filetype '{}' modules",
                    entry.class,
                    filetype.as_str()
                )
            })?;
            if kind == Some(LauncherKind::Container) {
                self.check_container(c, entry, &section)?;
            }
        }
        Ok(())
    }

    fn check_container(
        &self,
        c: &Checker,
        entry: &LauncherEntry,
        section: &str,
    ) -> Result<(), ConfigError> {
        let d = &entry.docker;
        c.not_empty(&entry.cmd, &format!("{section}.cmd"))?;
        c.not_empty(&d.engine, &format!("{section}.docker.engine"))?;
        c.not_empty(&d.image, &format!("{section}.docker.image"))?;
        let workdir = format!("{section}.docker.workdir");
        c.ensure(d.workdir.starts_with('/'), &workdir, || {
            format!("'{}' must be an absolute path in the container", d.workdir)
        })?;
        let pull = format!("{section}.docker.pull");
        c.ensure(
            matches!(d.pull.as_str(), "missing" | "never" | "always"),
            &pull,
            || format!("'{}' must be missing, never or always", d.pull),
        )?;
        c.non_negative(
            d.stop_grace_sec,
            &format!("{section}.docker.stop_grace_sec"),
        )?;
        c.positive(
            d.engine_timeout_sec,
            &format!("{section}.docker.engine_timeout_sec"),
        )
    }

    fn check_mqtt(&self, c: &Checker) -> Result<(), ConfigError> {
        let m = &self.mqtt;
        c.not_empty(&m.host, "mqtt.host")?;
        c.non_zero(u64::from(m.port), "mqtt.port")?;
        c.positive(m.reconnect_min_sec, "mqtt.reconnect_min_sec")?;
        let ordered = m.reconnect_min_sec <= m.reconnect_max_sec;
        c.ensure_pair(
            ordered,
            "mqtt.reconnect_max_sec",
            "mqtt.reconnect_min_sec",
            || {
                format!(
                    "'{}' is less than mqtt.reconnect_min_sec '{}'",
                    m.reconnect_max_sec, m.reconnect_min_sec
                )
            },
        )?;
        c.positive(m.reconnect_max_sec, "mqtt.reconnect_max_sec")?;

        if let Err(problem) = parse_store(&self.repository.url, &self.config_dir) {
            return Err(c.invalid("repository.url", problem));
        }
        c.positive(self.repository.timeout_sec, "repository.timeout_sec")?;
        c.positive(
            self.repository.total_timeout_sec,
            "repository.total_timeout_sec",
        )
    }

    /// Sizes and counts: none may be 0, and each piece must fit what carries it.
    fn check_limits(&self, c: &Checker) -> Result<(), ConfigError> {
        let m = &self.mqtt;
        let o = &self.launcher.output;
        let w = &self.launcher.wasm;
        let sizes = [
            (self.runtime.max_nmodules, "runtime.max_nmodules"),
            (m.max_packet_bytes, "mqtt.max_packet_bytes"),
            (
                m.max_incoming_packet_bytes,
                "mqtt.max_incoming_packet_bytes",
            ),
            (m.max_request_bytes, "mqtt.max_request_bytes"),
            (o.max_line_bytes, "launcher.output.max_line_bytes"),
            (o.max_batch_bytes, "launcher.output.max_batch_bytes"),
            (o.max_buffered_bytes, "launcher.output.max_buffered_bytes"),
            (w.max_memory_bytes, "launcher.wasm.max_memory_bytes"),
        ];
        for (value, key) in sizes {
            c.non_zero(value as u64, key)?;
        }
        c.non_zero(self.repository.max_file_bytes, "repository.max_file_bytes")?;
        c.non_zero(self.repository.max_files as u64, "repository.max_files")?;
        c.non_zero(
            self.repository.max_total_bytes,
            "repository.max_total_bytes",
        )?;
        c.non_zero(w.fuel_slice, "launcher.wasm.fuel_slice")?;

        let fits = [
            (
                m.max_request_bytes,
                "mqtt.max_request_bytes",
                m.max_incoming_packet_bytes,
                "mqtt.max_incoming_packet_bytes",
            ),
            (
                o.max_line_bytes,
                "launcher.output.max_line_bytes",
                o.max_batch_bytes,
                "launcher.output.max_batch_bytes",
            ),
        ];
        for (value, key, limit, limit_key) in fits {
            c.ensure_pair(value <= limit, key, limit_key, || {
                format!("'{value}' exceeds {limit_key} '{limit}'")
            })?;
        }
        self.check_batch_fits_packet(c)
    }

    /// A batch of output must fit one MQTT packet once encoded: as a JSON string
    /// (`dialect.stdio_json`) a byte can grow to six (`\u00XX`), and the topic and
    /// packet header need room too.
    fn check_batch_fits_packet(&self, c: &Checker) -> Result<(), ConfigError> {
        let batch = self.launcher.output.max_batch_bytes;
        let packet = self.mqtt.max_packet_bytes;
        let json = self.dialect.stdio_json;
        let growth = if json { JSON_GROWTH } else { 1 };
        let needed = batch.saturating_mul(growth).saturating_add(PACKET_OVERHEAD);

        let key = "launcher.output.max_batch_bytes";
        c.ensure_pair(needed <= packet, key, "mqtt.max_packet_bytes", || {
            let encoding = if json {
                format!("x{growth} for JSON string escapes with dialect.stdio_json 'true'")
            } else {
                "sent raw with dialect.stdio_json 'false'".to_string()
            };
            let most = packet.saturating_sub(PACKET_OVERHEAD) / growth;
            format!(
                "'{batch}' needs up to '{needed}' bytes once published ({encoding}, plus \
                 {PACKET_OVERHEAD} for topic and header), more than mqtt.max_packet_bytes \
                 '{packet}': lower {key} to at most '{most}' or raise mqtt.max_packet_bytes"
            )
        })
    }

    fn check_dialect(&self, c: &Checker) -> Result<(), ConfigError> {
        let d = &self.dialect;
        c.one_of(&d.name, "dialect.name", &["silverline", "arena", "arts"])?;
        c.one_of(&d.exit_notice, "dialect.exit_notice", &["exited", "delete"])?;
        c.one_of(
            &d.error_format,
            "dialect.error_format",
            &["envelope", "bare"],
        )?;
        c.not_empty(&d.req_type, "dialect.req_type")?;
        c.not_empty(&d.resp_type, "dialect.resp_type")?;

        let t = &d.topics;
        let topics = [
            ("reg", &t.reg),
            ("control", &t.control),
            ("response", &t.response),
            ("exited", &t.exited),
            ("keepalive", &t.keepalive),
            ("stdout", &t.stdout),
            ("stderr", &t.stderr),
            ("stdin", &t.stdin),
            ("log", &t.log),
        ];
        for (name, topic) in topics {
            c.not_empty(topic, &format!("dialect.topics.{name}"))?;
        }
        Ok(())
    }
}

/// Error constructors of validation, naming the key and the layer that set it.
pub(super) struct Checker<'a> {
    pub(super) origins: &'a Origins,
    /// Origin of keys no layer set.
    pub(super) fallback: &'a str,
}

impl Checker<'_> {
    pub(super) fn invalid(&self, key: &str, problem: String) -> ConfigError {
        ConfigError::Invalid {
            origin: origin_of(self.origins, key, self.fallback),
            key: key.to_string(),
            problem,
        }
    }

    fn ensure(
        &self,
        ok: bool,
        key: &str,
        problem: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(self.invalid(key, problem()))
        }
    }

    /// As `ensure` for a key checked against another: the error names `key`, and the
    /// layer that set it, or else the layer that set `other` (the one the user changed).
    fn ensure_pair(
        &self,
        ok: bool,
        key: &str,
        other: &str,
        problem: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        if ok {
            return Ok(());
        }
        let origin = match self.origins.get(key) {
            Some(origin) => origin.clone(),
            None => origin_of(self.origins, other, self.fallback),
        };
        Err(ConfigError::Invalid {
            origin,
            key: key.to_string(),
            problem: problem(),
        })
    }

    fn positive(&self, value: f64, key: &str) -> Result<(), ConfigError> {
        let ok = value.is_finite() && value > 0.0 && value <= MAX_SECONDS;
        self.ensure(ok, key, || {
            format!("'{value}' must be a number greater than 0 and at most {MAX_SECONDS} (a year)")
        })
    }

    fn non_negative(&self, value: f64, key: &str) -> Result<(), ConfigError> {
        let ok = (0.0..=MAX_SECONDS).contains(&value);
        self.ensure(ok, key, || {
            format!("'{value}' must be 0 (off) or a positive number up to {MAX_SECONDS} (a year)")
        })
    }

    fn non_zero(&self, value: u64, key: &str) -> Result<(), ConfigError> {
        self.ensure(value != 0, key, || "'0' must be at least 1".to_string())
    }

    fn not_empty(&self, value: &str, key: &str) -> Result<(), ConfigError> {
        self.ensure(!value.trim().is_empty(), key, || {
            "must not be empty".to_string()
        })
    }

    fn one_of(&self, value: &str, key: &str, allowed: &[&str]) -> Result<(), ConfigError> {
        self.ensure(allowed.contains(&value), key, || {
            format!("'{value}' is not one of {}", allowed.join(", "))
        })
    }
}

/// Logzero level names (and `WARN`), case-insensitive, to the canonical name and filter.
pub(super) fn parse_level(name: &str) -> Option<(&'static str, log::LevelFilter)> {
    use log::LevelFilter;
    match name.trim().to_ascii_uppercase().as_str() {
        "CRITICAL" => Some(("CRITICAL", LevelFilter::Error)),
        "ERROR" => Some(("ERROR", LevelFilter::Error)),
        "WARNING" | "WARN" => Some(("WARNING", LevelFilter::Warn)),
        "INFO" => Some(("INFO", LevelFilter::Info)),
        "DEBUG" => Some(("DEBUG", LevelFilter::Debug)),
        _ => None,
    }
}
