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

/// The fields of an event or span as tracing-subscriber's `DefaultFields`
/// writes them with ANSI off (`name=value` by `Debug`, space-separated, the
/// message bare, `log.` metadata skipped), without styling each
/// name through `nu_ansi_term` (a tenth of a request's instructions). The
/// message and errors still go through `DefaultVisitor` itself.
#[derive(Default)]
pub struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut v = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    is_empty: bool,
    result: std::fmt::Result,
}

impl PlainVisitor<'_> {
    /// The message or an error, written by `DefaultVisitor` (its escaping).
    fn by_default(&mut self, record: impl FnOnce(&mut tracing_subscriber::fmt::format::DefaultVisitor<'_>)) {
        use tracing_subscriber::field::VisitOutput;
        let mut v = tracing_subscriber::fmt::format::DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut v);
        self.result = v.finish();
        self.is_empty = false;
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"))
        } else {
            self.record_debug(field, &value)
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_ok() {
            self.by_default(|v| v.record_error(field, value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        if name == "message" {
            return self.by_default(|v| v.record_debug(field, value));
        }
        if !std::mem::take(&mut self.is_empty) {
            self.result = self.writer.write_char(' ');
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let w = &mut self.writer;
        self.result = self
            .result
            .and_then(|()| w.write_str(name))
            .and_then(|()| w.write_char('='))
            .and_then(|()| write!(w, "{value:?}"));
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

impl Format {
    /// The text format's line: time, level, the spans from the root with
    /// their fields, the event's fields as the field formatter writes them.
    fn text_line<S, N>(
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> std::fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let meta = event.metadata();
        // The message matters only to the HTTP layer's errors (their level).
        let level = if *meta.level() == Level::ERROR && meta.target().starts_with("actix_http") {
            let mut fields = Fields {
                message_only: true,
                ..Fields::default()
            };
            event.record(&mut fields);
            shown_level(meta.target(), *meta.level(), &fields.message)
        } else {
            *meta.level()
        };
        write!(
            w,
            "{} {:>5} ",
            now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            level.as_str()
        )?;
        let mut any_span = false;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                any_span = true;
                let ext = span.extensions();
                match ext.get::<FormattedFields<N>>().filter(|f| !f.is_empty()) {
                    Some(formatted) => write!(w, "{}{{{formatted}}}:", span.name())?,
                    None => write!(w, "{}:", span.name())?,
                }
            }
        }
        if any_span {
            w.write_char(' ')?;
        }
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

impl<S, N> FormatEvent<S, N> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        let now = chrono::Utc::now();
        if !self.json {
            return Self::text_line(ctx, w, event, now);
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = shown_level(meta.target(), *meta.level(), &fields.message);
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
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer \x1b[31m")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// What a few events and a span look like in the text format, with the
    /// given field formatter (the time stamps cut off).
    fn lines<N>(fields: N) -> Vec<String>
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let buf = Buf::default();
        let out = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .event_format(Format::new("text"))
            .fmt_fields(fields)
            .with_ansi(false)
            .with_writer(move || out.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = tracing::info_span!("request", request_id = %"req-1", method = "GET", n = 3);
            let _e = span.enter();
            tracing::info!(path = %"/v2.1/images?x=\"y\"", status = 200u16, ok = true, r#type = "t", "{} {}", "GET", "x");
            tracing::warn!(
                latency_ms = format_args!("{:.1}", 1.25),
                s = "quote \" and \u{1b}[0m",
                f = 0.5,
                i = -3
            );
            let err = Outer(std::io::Error::other("inner"));
            tracing::error!(
                error = &err as &(dyn std::error::Error + 'static),
                "message with \u{1b}[31m escape"
            );
            tracing::info!("only a message");
            tracing::info!(a = 1);
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| l.split_once(' ').unwrap().1.to_string()).collect()
    }

    #[test]
    fn plain_fields_write_what_the_default_field_formatter_writes() {
        let want = lines(tracing_subscriber::fmt::format::DefaultFields::new());
        assert_eq!(want.len(), 5, "{want:?}");
        assert_eq!(lines(PlainFields), want);
    }

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
