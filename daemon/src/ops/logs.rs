//! Container logs through the API server (which asks the node's kubelet):
//! one pod's, or those of every pod a label selector matches (each line
//! prefixed by `[pod/container]`, merged in time order). Streams are read
//! line by line in bounded memory, filtered by an optional `grep`, and
//! only the newest matching lines that fit the answer's byte budget are
//! kept; the answer says how many matched and how many were left out.
//! An answer that is not plain text is refused.

use futures::StreamExt;
use http_body_util::BodyExt;
use kube::api::{ListParams, LogParams};
use serde_json::Value;
use tokio::time::Instant;

use super::{
    OpOptions, Rendered, ResolvedKind,
    call::{Call, media_type},
    core_kind,
    logscan::{Line, Scan},
};
use crate::{
    error::OpError,
    pool::ClusterClient,
    request::{
        logfilter::{LogPattern, SinceTime},
        names::{ContainerName, Namespace, ObjectName, Selector, shown},
        path,
    },
    safety::Action,
};

/// Whose log.
#[derive(Debug, Clone)]
pub enum LogPods {
    /// One pod by name.
    Named(ObjectName),
    /// Every pod of the namespace matching this label selector (at most
    /// [`MAX_PODS`]).
    Selected(Selector),
}

/// Which log lines.
#[derive(Debug, Clone)]
pub struct LogArgs {
    /// Namespace ("default" when `None`).
    pub namespace: Option<Namespace>,
    /// The pod, or the selector of the pods.
    pub pods: LogPods,
    /// Container (required for one pod that has several; with a selector,
    /// only this container of each pod, else all of them).
    pub container: Option<ContainerName>,
    /// The previous (crashed) container's log.
    pub previous: bool,
    /// Last N lines of each container (0 = the server's default: all).
    pub tail: i64,
    /// Only lines newer than this many seconds.
    pub since_seconds: i64,
    /// Only lines at or after this time.
    pub since_time: Option<SinceTime>,
    /// Prefix each line with the API server's timestamp.
    pub timestamps: bool,
    /// Only lines matching this pattern.
    pub grep: Option<LogPattern>,
}

/// Most pods a label selector reads.
pub const MAX_PODS: usize = 50;

/// Container logs read at the same time.
const PARALLEL_STREAMS: usize = 4;

/// Most entries named in one note (failures, pods without a log).
const NOTE_NAMES: usize = 5;

/// Reads the log(s) `args` names and renders the newest matching lines.
pub async fn logs(
    cc: &ClusterClient,
    args: &LogArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let started = Instant::now();
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(Namespace::default_namespace);
    let pods = core_kind(cc, "Pod", opts.timeout).await?;
    match &args.pods {
        LogPods::Named(name) => {
            opts.allow(
                cc,
                &pods,
                Action::Get,
                Some("log"),
                &format!("read the log of pod {name} in namespace {ns}"),
            )?;
            let stream = Stream {
                pod: name.clone(),
                container: args.container.clone(),
            };
            let read = read_stream(cc, &pods, &ns, args, &stream, false, opts, started).await?;
            let mut notes = Vec::new();
            if let Some(stop) = &read.stopped {
                notes.push(stop.note(&[read.label.as_str()], opts));
            }
            if read.cut_lines > 0 {
                notes.push(cut_note(read.cut_lines));
            }
            let lines: Vec<String> = read.lines.iter().map(|l| plain(l, args)).collect();
            let merged = Merged {
                scanned: read.scanned,
                matched: read.matched,
                dropped: read.dropped,
                lines,
                notes,
                streams: 1,
                pods: 1,
            };
            Ok(render(merged, args, opts.max_bytes, || {
                format!("(the log of {name} is empty)")
            }))
        }
        LogPods::Selected(selector) => {
            selected(cc, &pods, &ns, selector, args, opts, started).await
        }
    }
}

/// One container log to read.
#[derive(Debug, Clone)]
struct Stream {
    pod: ObjectName,
    container: Option<ContainerName>,
}

impl Stream {
    fn label(&self) -> String {
        match &self.container {
            Some(c) => format!("{}/{c}", self.pod),
            None => self.pod.to_string(),
        }
    }
}

/// Why a scan ended before its log did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// `[pool] max_response_bytes` read.
    Cap,
    /// The operation's deadline.
    Time,
}

impl Stopped {
    fn note(self, labels: &[&str], opts: &OpOptions) -> String {
        let which = named_list(labels);
        match self {
            Stopped::Cap => format!(
                "-- the search of {which} stopped after {} bytes ([pool] max_response_bytes): newer lines were not searched; pass tail, since or sinceTime to search the newest",
                opts.max_read_bytes
            ),
            Stopped::Time => format!(
                "-- the read of {which} stopped at the {}s time limit ([pool] request_timeout): later lines were not read; pass tail, since or sinceTime",
                opts.timeout.as_secs()
            ),
        }
    }
}

/// What one stream gave.
#[derive(Debug)]
struct StreamRead {
    label: String,
    lines: Vec<Line>,
    scanned: u64,
    matched: u64,
    dropped: u64,
    cut_lines: u64,
    stopped: Option<Stopped>,
}

/// Reads one container log to its end (or the read cap when searching,
/// or the deadline), keeping the newest matching lines within the
/// answer's budget. `stamped`: ask for timestamps to order several logs.
#[allow(clippy::too_many_arguments)]
async fn read_stream(
    cc: &ClusterClient,
    pods: &ResolvedKind,
    ns: &Namespace,
    args: &LogArgs,
    stream: &Stream,
    stamped: bool,
    opts: &OpOptions,
    started: Instant,
) -> Result<StreamRead, OpError> {
    let stamped = stamped || args.timestamps;
    let params = LogParams {
        container: stream.container.as_ref().map(|c| c.to_string()),
        previous: args.previous,
        tail_lines: (args.tail > 0).then_some(args.tail),
        since_seconds: (args.since_seconds > 0).then_some(args.since_seconds),
        since_time: args.since_time.map(|t| t.timestamp()),
        timestamps: stamped,
        ..LogParams::default()
    };
    let request = kube::core::Request::new(path::collection(&pods.resource, Some(ns)))
        .logs(&path::segment(stream.pod.as_str()), &params)
        .map_err(|e| OpError::InvalidArgument(format!("cannot build the log request: {e}")))?;
    let resource = format!("pods/log {} in namespace {ns}", stream.label());
    let call = Call::new(cc, "get", resource, opts).since(started);
    let (headers, mut body) = call.open(request).await?;
    let media = media_type(&headers);
    if media != "text/plain" {
        return Err(OpError::UnexpectedAnswer {
            cluster: cc.name.clone(),
            what: format!("get {}", call.resource()),
            expected: "a plain-text log".into(),
            got: format!("{media:?} content"),
        });
    }
    let cap = args.grep.as_ref().map(|_| opts.max_read_bytes as u64);
    let mut scan = Scan::new(args.grep.as_ref(), stamped, opts.max_bytes);
    let mut stopped = None;
    loop {
        match tokio::time::timeout_at(call.deadline(), body.frame()).await {
            Err(_) => {
                stopped = Some(Stopped::Time);
                break;
            }
            Ok(None) => break,
            Ok(Some(frame)) => {
                let frame = frame.map_err(|e| call.context().error(e))?;
                if let Ok(data) = frame.into_data() {
                    scan.feed(&data);
                }
            }
        }
        if cap.is_some_and(|cap| scan.bytes >= cap) {
            stopped = Some(Stopped::Cap);
            break;
        }
    }
    if stopped.is_none() {
        scan.finish();
    }
    Ok(StreamRead {
        label: stream.label(),
        scanned: scan.lines,
        matched: scan.matched,
        dropped: scan.dropped,
        cut_lines: scan.cut_lines,
        stopped,
        lines: scan.into_lines(),
    })
}

/// The logs of every pod `selector` matches in `ns`.
async fn selected(
    cc: &ClusterClient,
    pods: &ResolvedKind,
    ns: &Namespace,
    selector: &Selector,
    args: &LogArgs,
    opts: &OpOptions,
    started: Instant,
) -> Result<Rendered, OpError> {
    opts.allow(
        cc,
        pods,
        Action::List,
        None,
        &format!("list pods in namespace {ns}"),
    )?;
    opts.allow(
        cc,
        pods,
        Action::Get,
        Some("log"),
        &format!("read the logs of pods in namespace {ns}"),
    )?;
    let params = ListParams {
        label_selector: Some(selector.to_string()),
        limit: Some(MAX_PODS as u32),
        ..ListParams::default()
    };
    let request = kube::core::Request::new(path::collection(&pods.resource, Some(ns)))
        .list(&params)
        .map_err(|e| OpError::InvalidArgument(format!("cannot build the list request: {e}")))?;
    let call = Call::new(cc, "list", format!("pods in namespace {ns}"), opts).since(started);
    let list = call.json(request).await?;
    if list.get("kind").and_then(Value::as_str) != Some("PodList") {
        return Err(OpError::UnexpectedAnswer {
            cluster: cc.name.clone(),
            what: format!("list {}", call.resource()),
            expected: "a PodList (v1)".into(),
            got: format!(
                "{:?}",
                list.get("kind").and_then(Value::as_str).unwrap_or("")
            ),
        });
    }
    let more = list
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    let found = pods_of(&list, args.container.as_ref());
    let mut notes = Vec::new();
    if more {
        notes.push(format!(
            "-- only the first {MAX_PODS} pods (by name) matching labelSelector {} were read; narrow the selector for the others",
            shown(selector.as_str())
        ));
    }
    if !found.unscheduled.is_empty() {
        let names: Vec<&str> = found.unscheduled.iter().map(String::as_str).collect();
        notes.push(format!(
            "-- {} no log yet (not scheduled to a node): {}",
            pods_have(names.len()),
            named_list(&names)
        ));
    }
    if !found.without_container.is_empty() {
        let names: Vec<&str> = found.without_container.iter().map(String::as_str).collect();
        notes.push(format!(
            "-- {} no container {}: {}",
            pods_have(names.len()),
            args.container.as_ref().map(|c| c.as_str()).unwrap_or(""),
            named_list(&names)
        ));
    }
    if found.streams.is_empty() {
        let text = if found.pods == 0 {
            format!(
                "(no pod in namespace {ns} matches labelSelector {})\n",
                shown(selector.as_str())
            )
        } else {
            format!("(no log to read)\n{}\n", notes.join("\n"))
        };
        return Ok(Rendered {
            text,
            ..Default::default()
        });
    }
    let streams = found.streams.len();
    let reads: Vec<Result<StreamRead, (String, OpError)>> =
        futures::stream::iter(found.streams.into_iter().map(|s| async move {
            read_stream(cc, pods, ns, args, &s, true, opts, started)
                .await
                .map_err(|e| (s.label(), e))
        }))
        .buffer_unordered(PARALLEL_STREAMS)
        .collect()
        .await;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for r in reads {
        match r {
            Ok(read) => ok.push(read),
            Err(e) => failed.push(e),
        }
    }
    if ok.is_empty() && !failed.is_empty() {
        return Err(failed.swap_remove(0).1);
    }
    if !failed.is_empty() {
        failed.sort_by(|a, b| a.0.cmp(&b.0));
        let shown_failures: Vec<String> = failed
            .iter()
            .take(NOTE_NAMES)
            .map(|(label, e)| format!("{label}: {}", one_line(&e.to_string(), 200)))
            .collect();
        notes.push(format!(
            "-- {} of {streams} logs could not be read: {}{}",
            failed.len(),
            shown_failures.join("; "),
            if failed.len() > NOTE_NAMES {
                "; ..."
            } else {
                ""
            }
        ));
    }
    for stop in [Stopped::Cap, Stopped::Time] {
        let mut labels: Vec<&str> = ok
            .iter()
            .filter(|r| r.stopped == Some(stop))
            .map(|r| r.label.as_str())
            .collect();
        if !labels.is_empty() {
            labels.sort_unstable();
            notes.push(stop.note(&labels, opts));
        }
    }
    let cut: u64 = ok.iter().map(|r| r.cut_lines).sum();
    if cut > 0 {
        notes.push(cut_note(cut));
    }
    Ok(render(
        merge(ok, args, notes, found.pod_count_read, streams),
        args,
        opts.max_bytes,
        || "(the logs are empty)".to_string(),
    ))
}

/// The pods of a PodList to read, and those that cannot be.
#[derive(Debug, Default)]
struct Found {
    streams: Vec<Stream>,
    pods: usize,
    pod_count_read: usize,
    unscheduled: Vec<String>,
    without_container: Vec<String>,
}

fn pods_of(list: &Value, container: Option<&ContainerName>) -> Found {
    let mut found = Found::default();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    for pod in &items {
        let Some(name) = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .and_then(|n| ObjectName::parse("name", n).ok())
        else {
            continue;
        };
        found.pods += 1;
        if pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            found.unscheduled.push(name.to_string());
            continue;
        }
        let containers: Vec<ContainerName> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str())
                    .filter_map(|n| ContainerName::parse("container", n).ok())
                    .collect()
            })
            .unwrap_or_default();
        let chosen: Vec<ContainerName> = match container {
            Some(want) if containers.contains(want) => vec![want.clone()],
            Some(_) => {
                found.without_container.push(name.to_string());
                continue;
            }
            None => containers,
        };
        if !chosen.is_empty() {
            found.pod_count_read += 1;
        }
        for c in chosen {
            found.streams.push(Stream {
                pod: name.clone(),
                container: Some(c),
            });
        }
    }
    found
}

/// Matching lines of one or several logs, oldest first, and the counts.
#[derive(Debug)]
struct Merged {
    lines: Vec<String>,
    scanned: u64,
    matched: u64,
    /// Matching lines already left out before `lines`.
    dropped: u64,
    notes: Vec<String>,
    streams: usize,
    pods: usize,
}

/// Several logs' lines in time order (by the API server's timestamps;
/// ties and unreadable stamps keep each log's order), each prefixed by
/// `[pod/container]`.
fn merge(
    reads: Vec<StreamRead>,
    args: &LogArgs,
    notes: Vec<String>,
    pods: usize,
    streams: usize,
) -> Merged {
    let mut scanned = 0;
    let mut matched = 0;
    let mut dropped = 0;
    let mut all: Vec<(Option<jiff::Timestamp>, usize, String)> = Vec::new();
    for read in reads {
        scanned += read.scanned;
        matched += read.matched;
        dropped += read.dropped;
        for line in read.lines {
            let at = line.stamp.as_deref().and_then(|s| s.parse().ok());
            let text = format!("[{}] {}", read.label, plain(&line, args));
            let seq = all.len();
            all.push((at, seq, text));
        }
    }
    all.sort_by_key(|(at, seq, _)| (*at, *seq));
    Merged {
        lines: all.into_iter().map(|(_, _, t)| t).collect(),
        scanned,
        matched,
        dropped,
        notes,
        streams,
        pods,
    }
}

/// A kept line as shown: with its timestamp only when asked for.
fn plain(line: &Line, args: &LogArgs) -> String {
    match (&line.stamp, args.timestamps) {
        (Some(stamp), true) => format!("{stamp} {}", line.text),
        _ => line.text.clone(),
    }
}

/// The answer: a note on older lines left out, the newest lines that fit
/// the budget, then what the search found and any notes.
fn render(
    merged: Merged,
    args: &LogArgs,
    max_bytes: usize,
    empty: impl FnOnce() -> String,
) -> Rendered {
    let Merged {
        lines,
        scanned,
        matched,
        dropped,
        mut notes,
        streams,
        pods,
    } = merged;
    let several = matches!(args.pods, LogPods::Selected(_));
    let what = if args.grep.is_some() {
        "matching lines"
    } else {
        "lines"
    };
    // The summary is computed with the final count of shown lines, so
    // reserve room for it and the notes first.
    let notes_len: usize = notes.iter().map(|n| n.len() + 1).sum();
    let reserve = notes_len + 200 + if args.grep.is_some() { 120 } else { 0 };
    let room = max_bytes.saturating_sub(reserve);
    let mut used = 0;
    let mut start = lines.len();
    while start > 0 && used + lines[start - 1].len() < room {
        used += lines[start - 1].len() + 1;
        start -= 1;
    }
    let shown_lines = &lines[start..];
    let omitted = dropped + start as u64;
    if let Some(grep) = &args.grep {
        let across = if several {
            format!(" in {streams} logs of {pods} pods")
        } else {
            String::new()
        };
        notes.insert(
            0,
            format!(
                "-- {matched} of {scanned} lines{across} matched grep {}; {} shown",
                shown(grep.as_str()),
                shown_lines.len()
            ),
        );
    } else if several {
        notes.insert(
            0,
            format!(
                "-- {scanned} lines from {streams} logs of {pods} pods; {} shown",
                shown_lines.len()
            ),
        );
    }
    let mut text = String::new();
    if omitted > 0 {
        text.push_str(&format!(
            "... {omitted} older {what} left out (answer capped at {max_bytes} bytes); narrow with tail, since, sinceTime or grep\n"
        ));
    }
    for l in shown_lines {
        text.push_str(l);
        text.push('\n');
    }
    if shown_lines.is_empty() && omitted == 0 {
        if args.grep.is_some() {
            text.push_str("(no line matches)\n");
        } else {
            text.push_str(&empty());
            text.push('\n');
        }
    }
    for n in &notes {
        text.push_str(n);
        text.push('\n');
    }
    Rendered {
        text,
        items: u32::try_from(shown_lines.len()).unwrap_or(u32::MAX),
        omitted: u32::try_from(omitted).unwrap_or(u32::MAX),
        ..Default::default()
    }
}

fn cut_note(n: u64) -> String {
    format!(
        "-- {n} lines longer than {} bytes were cut (only their start was searched and shown)",
        super::logscan::MAX_LINE_BYTES
    )
}

/// "1 pod has" / "N pods have".
fn pods_have(n: usize) -> String {
    if n == 1 {
        "1 pod has".into()
    } else {
        format!("{n} pods have")
    }
}

/// Up to [`NOTE_NAMES`] names, then how many more.
fn named_list(names: &[&str]) -> String {
    let mut out = names
        .iter()
        .take(NOTE_NAMES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NOTE_NAMES {
        out.push_str(&format!(" and {} more", names.len() - NOTE_NAMES));
    }
    out
}

/// `text` on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(grep: Option<&str>, selector: bool) -> LogArgs {
        LogArgs {
            namespace: None,
            pods: if selector {
                LogPods::Selected(Selector::parse("labelSelector", "app=x").unwrap())
            } else {
                LogPods::Named(ObjectName::parse("name", "p").unwrap())
            },
            container: None,
            previous: false,
            tail: 0,
            since_seconds: 0,
            since_time: None,
            timestamps: false,
            grep: grep.map(|g| LogPattern::parse("grep", g).unwrap()),
        }
    }

    fn read(label: &str, lines: &[(&str, &str)]) -> StreamRead {
        StreamRead {
            label: label.into(),
            lines: lines
                .iter()
                .map(|(s, t)| Line {
                    stamp: Some(s.to_string()),
                    text: t.to_string(),
                })
                .collect(),
            scanned: lines.len() as u64 * 2,
            matched: lines.len() as u64,
            dropped: 0,
            cut_lines: 0,
            stopped: None,
        }
    }

    #[test]
    fn several_logs_merge_in_time_order_with_prefixes() {
        let a = args(None, true);
        let m = merge(
            vec![
                read(
                    "b/c",
                    &[
                        ("2026-01-01T00:00:01Z", "b1"),
                        ("2026-01-01T00:00:03.5Z", "b3"),
                    ],
                ),
                read(
                    "a/c",
                    &[
                        ("2026-01-01T00:00:02.25Z", "a2"),
                        ("2026-01-01T00:00:03Z", "a3"),
                    ],
                ),
            ],
            &a,
            Vec::new(),
            2,
            2,
        );
        assert_eq!(m.lines, ["[b/c] b1", "[a/c] a2", "[a/c] a3", "[b/c] b3"]);
        assert_eq!((m.scanned, m.matched), (8, 4));
    }

    #[test]
    fn the_answer_keeps_the_newest_lines_within_the_budget_and_counts_the_rest() {
        let a = args(Some("error"), false);
        let lines: Vec<String> = (1..=1000).map(|i| format!("error line {i:04}")).collect();
        let merged = Merged {
            lines,
            scanned: 5000,
            matched: 1200,
            dropped: 200,
            notes: vec!["-- a note".into()],
            streams: 1,
            pods: 1,
        };
        let r = render(merged, &a, 2048, String::new);
        assert!(r.text.len() <= 2048, "{} bytes: {}", r.text.len(), r.text);
        assert!(r.text.ends_with("-- a note\n"), "{}", r.text);
        assert!(r.text.contains("error line 1000\n"), "{}", r.text);
        assert_eq!(
            u64::from(r.items) + u64::from(r.omitted),
            1200,
            "{}",
            r.text
        );
        assert!(
            r.text
                .starts_with(&format!("... {} older matching lines left out", r.omitted)),
            "{}",
            r.text
        );
        assert!(
            r.text
                .contains("-- 1200 of 5000 lines matched grep \"error\"; "),
            "{}",
            r.text
        );
        // Nothing left out and no search: only the lines, as before.
        let plain_args = args(None, false);
        let merged = Merged {
            lines: vec!["a".into(), "b".into()],
            scanned: 2,
            matched: 2,
            dropped: 0,
            notes: Vec::new(),
            streams: 1,
            pods: 1,
        };
        assert_eq!(
            render(merged, &plain_args, 2048, String::new).text,
            "a\nb\n"
        );
    }

    #[test]
    fn stamps_show_only_when_asked() {
        let line = Line {
            stamp: Some("2026-01-01T00:00:01Z".into()),
            text: "x".into(),
        };
        let mut a = args(None, false);
        assert_eq!(plain(&line, &a), "x");
        a.timestamps = true;
        assert_eq!(plain(&line, &a), "2026-01-01T00:00:01Z x");
    }
}
