//! How log lines look (`log.format`): `text`, one human-readable line per
//! event, or `json`, one object per line with oslo.log's `JSONFormatter`
//! field names (`message`, `asctime`, `name`, `levelname`, `levelno`,
//! `created`, `process`, `hostname`, `context` with `request_id`,
//! `global_request_id`, `user`, `project`, and `extra` for the rest), so the
//! pipelines that ship Nova's JSON logs take this service's as they are.
//!
//! Both formats demote the errors the HTTP layer logs for what a client did
//! (a request it cannot parse, a body cut off, a connection gone) to `WARN`:
//! an alert on `ERROR` then means a fault of the service or its backends.

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of both `log.format`s.
pub struct Format {
    json: bool,
    hostname: String,
}

impl Format {
    /// `format` is `text` or `json` (checked by the configuration).
    pub fn new(format: &str) -> Format {
        Format {
            json: format == "json",
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
        }
    }
}

/// The level an event is shown at: the HTTP layer's `ERROR`s about what a
/// client sent or did become `WARN`.
pub fn shown_level(target: &str, level: Level, message: &str) -> Level {
    let service_side = [
        "Response payload stream error",
        "Initialization",
        "readiness",
        "Upgrade",
    ];
    if level == Level::ERROR && target.starts_with("actix_http") && !service_side.iter().any(|s| message.starts_with(s))
    {
        Level::WARN
    } else {
        level
    }
}

#[derive(Default)]
struct Fields {
    /// Only the message is wanted (the text format writes the rest itself).
    message_only: bool,
    message: String,
    values: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.wants(field) {
            self.put(field, serde_json::Value::from(format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.wants(field) {
            self.put(field, value.into());
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.wants(field) {
            self.put(field, value.into());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.wants(field) {
            self.put(field, value.into());
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.wants(field) {
            self.put(field, value.into());
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.wants(field) {
            self.put(field, value.into());
        }
    }
}

impl Fields {
    fn wants(&self, field: &Field) -> bool {
        !self.message_only || field.name() == "message"
    }

    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
        } else {
            self.values.insert(field.name().to_string(), value);
        }
    }
}

/// Fields of a span as the default field formatter wrote them (`k=v k=v`).
fn span_fields(formatted: &str) -> impl Iterator<Item = (&str, &str)> {
    formatted.split(' ').filter_map(|kv| kv.split_once('='))
}

fn python_level(level: Level) -> (&'static str, u8) {
    match level {
        Level::ERROR => ("ERROR", 40),
        Level::WARN => ("WARNING", 30),
        Level::INFO => ("INFO", 20),
        Level::DEBUG => ("DEBUG", 10),
        Level::TRACE => ("TRACE", 5),
    }
}

impl<S, N> FormatEvent<S, N> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        // The text format needs only the message here (for its level); the
        // fields are written by the field formatter.
        let mut fields = Fields {
            message_only: !self.json,
            ..Fields::default()
        };
        event.record(&mut fields);
        let level = shown_level(meta.target(), *meta.level(), &fields.message);
        let now = chrono::Utc::now();
        // Spans from the root: name and their formatted fields.
        let mut spans: Vec<(String, String)> = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let formatted = ext
                    .get::<FormattedFields<N>>()
                    .map(|f| f.to_string())
                    .unwrap_or_default();
                spans.push((span.name().to_string(), formatted));
            }
        }
        if !self.json {
            write!(
                w,
                "{} {:>5} ",
                now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                level.as_str()
            )?;
            for (name, formatted) in &spans {
                if formatted.is_empty() {
                    write!(w, "{name}:")?;
                } else {
                    write!(w, "{name}{{{formatted}}}:")?;
                }
            }
            if !spans.is_empty() {
                w.write_char(' ')?;
            }
            ctx.format_fields(w.by_ref(), event)?;
            return writeln!(w);
        }
        let mut context = serde_json::Map::new();
        for (_, formatted) in &spans {
            for (k, v) in span_fields(formatted) {
                if k == "request_id" {
                    context.insert(k.to_string(), v.into());
                }
            }
        }
        let mut extra = serde_json::Map::new();
        for (k, v) in fields.values {
            match k.as_str() {
                "request_id" | "global_request_id" => {
                    context.insert(k, v);
                }
                "user_id" => {
                    context.insert("user".into(), v);
                }
                "project_id" => {
                    context.insert("project".into(), v);
                }
                _ => {
                    extra.insert(k, v);
                }
            }
        }
        let (levelname, levelno) = python_level(level);
        let created = now.timestamp_micros() as f64 / 1e6;
        let line = serde_json::json!({
            "message": fields.message,
            "asctime": now.format("%Y-%m-%d %H:%M:%S,%3f").to_string(),
            "name": meta.target().replace("::", "."),
            "levelname": levelname,
            "levelno": levelno,
            "created": created,
            "msecs": now.timestamp_subsec_millis(),
            "process": std::process::id(),
            "hostname": self.hostname,
            "context": context,
            "extra": extra,
        });
        writeln!(w, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_protocol_errors_are_warnings() {
        let t = "actix_http::h1::dispatcher";
        assert_eq!(
            shown_level(
                t,
                Level::ERROR,
                "stream error: Request parse error: Invalid Header provided"
            ),
            Level::WARN
        );
        assert_eq!(
            shown_level(t, Level::ERROR, "Response payload stream error: x"),
            Level::ERROR
        );
        assert_eq!(shown_level("nova_images_proxy", Level::ERROR, "x"), Level::ERROR);
        assert_eq!(shown_level(t, Level::INFO, "x"), Level::INFO);
    }
}
