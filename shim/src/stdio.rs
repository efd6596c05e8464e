//! The stdio transport, plus JSON-RPC's answer to a line that is not JSON
//! (`-32700 Parse error`, id null): rmcp's own stdio transport skips such a
//! line without a word, and the client waits for an answer that never comes.

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream},
    sync::mpsc,
    task::JoinHandle,
};

/// What `serve` reads and writes, and the task writing stdout (await it
/// after the service ends, so that the last answers are flushed).
pub struct Stdio {
    /// stdin, without the lines that are not JSON.
    pub reader: DuplexStream,
    /// Into stdout, between parse errors.
    pub writer: DuplexStream,
    /// Copies to stdout until `writer` is dropped.
    pub flushed: JoinHandle<()>,
}

/// Wraps the process's stdin and stdout.
pub fn stdio() -> Stdio {
    wrap(tokio::io::stdin(), tokio::io::stdout())
}

fn wrap(
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> Stdio {
    let (to_service, reader) = tokio::io::duplex(64 * 1024);
    let (writer, from_service) = tokio::io::duplex(64 * 1024);
    let (errors_tx, errors_rx) = mpsc::unbounded_channel();
    tokio::spawn(filter_input(input, to_service, errors_tx));
    let flushed = tokio::spawn(write_output(from_service, errors_rx, output));
    Stdio {
        reader,
        writer,
        flushed,
    }
}

/// Passes JSON lines on; answers the others with a parse error.
async fn filter_input(
    input: impl AsyncRead + Unpin,
    mut to_service: DuplexStream,
    errors: mpsc::UnboundedSender<String>,
) {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&line) {
            let answer = serde_json::json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": {"code": -32700, "message": format!("Parse error: {e}")},
            });
            let _ = errors.send(answer.to_string());
            continue;
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        if to_service.write_all(&line).await.is_err() {
            return;
        }
    }
}

/// An answer line at least this long is preceded by nskd_proto::memory::release_freed.
const RELEASE_AFTER: usize = 4096;

/// Writes the service's lines and the parse errors, whole lines each.
async fn write_output(
    from_service: DuplexStream,
    mut errors: mpsc::UnboundedReceiver<String>,
    mut output: impl AsyncWrite + Unpin,
) {
    let mut from_service = BufReader::new(from_service);
    // Kept across iterations: a read_until cancelled by the other branch
    // leaves its partial line here and the next call goes on with it.
    let mut service_line = Vec::new();
    let mut errors_open = true;
    loop {
        // Errors first: a parse error is queued before the lines after it
        // reach the service, so it also leaves before their answers.
        let line = tokio::select! {
            biased;
            error = errors.recv(), if errors_open => match error {
                Some(e) => format!("{e}\n").into_bytes(),
                None => {
                    errors_open = false;
                    continue;
                }
            },
            read = from_service.read_until(b'\n', &mut service_line) => match read {
                Ok(n) if n > 0 => std::mem::take(&mut service_line),
                _ => break,
            },
        };
        if line.len() >= RELEASE_AFTER {
            // A big answer (tools/list, a page of objects) left its parsed
            // and serialized forms freed in the heap: give those pages back
            // before it leaves, so the session waits for its next request
            // without them.
            nskd_proto::memory::release_freed();
        }
        if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
            return;
        }
    }
    while let Ok(e) = errors.try_recv() {
        let _ = output.write_all(format!("{e}\n").as_bytes()).await;
    }
    let _ = output.flush().await;
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn json_lines_pass_and_other_lines_get_a_parse_error() {
        let input: &[u8] = b"{\"a\":1}\nnot json\n\n{\"b\":\n[2]";
        let (out_writer, mut out_reader) = tokio::io::duplex(4096);
        let mut s = wrap(input, out_writer);
        let mut passed = String::new();
        s.reader.read_to_string(&mut passed).await.unwrap();
        assert_eq!(passed, "{\"a\":1}\n[2]\n");
        s.writer.write_all(b"{\"answer\":true}\n").await.unwrap();
        drop(s.writer);
        s.flushed.await.unwrap();
        let mut written = String::new();
        out_reader.read_to_string(&mut written).await.unwrap();
        let lines: Vec<serde_json::Value> = written
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let parse_errors = lines
            .iter()
            .filter(|l| l["error"]["code"] == -32700 && l["id"].is_null())
            .count();
        assert_eq!(parse_errors, 2, "{written}");
        assert!(lines.iter().any(|l| l["answer"] == true), "{written}");
    }
}
