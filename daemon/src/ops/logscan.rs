//! Scanning a log stream line by line in bounded memory: an optional
//! `grep` filter, and a ring that keeps only the newest matching lines
//! that fit a byte budget, counting everything else.

use std::collections::VecDeque;

use crate::request::logfilter::LogPattern;

/// Longest line kept whole; the rest of a longer line is cut (and not
/// searched), so one endless line cannot grow memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// One kept line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The API server's RFC 3339 timestamp, when it was asked for one
    /// (cut off the text).
    pub stamp: Option<String>,
    /// The line, without its newline (cut at [`MAX_LINE_BYTES`]).
    pub text: String,
}

impl Line {
    /// Bytes it takes in an answer (newline included).
    pub fn size(&self) -> usize {
        self.text.len() + self.stamp.as_ref().map_or(0, |s| s.len() + 1) + 1
    }
}

/// The state of one scan.
#[derive(Debug)]
pub struct Scan<'p> {
    pattern: Option<&'p LogPattern>,
    stamped: bool,
    budget: usize,
    ring: VecDeque<Line>,
    ring_bytes: usize,
    partial: Vec<u8>,
    partial_cut: bool,
    /// Lines seen.
    pub lines: u64,
    /// Lines that matched (all lines without a pattern).
    pub matched: u64,
    /// Matching lines pushed out of the ring by newer ones.
    pub dropped: u64,
    /// Lines longer than [`MAX_LINE_BYTES`], cut.
    pub cut_lines: u64,
    /// Bytes read.
    pub bytes: u64,
}

impl<'p> Scan<'p> {
    /// A scan keeping at most `budget` bytes of matching lines; `stamped`
    /// when every line starts with a timestamp and a space (matched
    /// against the rest only).
    pub fn new(pattern: Option<&'p LogPattern>, stamped: bool, budget: usize) -> Self {
        Self {
            pattern,
            stamped,
            budget,
            ring: VecDeque::new(),
            ring_bytes: 0,
            partial: Vec::new(),
            partial_cut: false,
            lines: 0,
            matched: 0,
            dropped: 0,
            cut_lines: 0,
            bytes: 0,
        }
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.bytes += data.len() as u64;
        while let Some(end) = data.iter().position(|b| *b == b'\n') {
            self.take(&data[..end]);
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
            self.partial = line;
            self.partial.clear();
            self.partial_cut = false;
            data = &data[end + 1..];
        }
        self.take(data);
    }

    /// Ends the stream (a last line without a newline counts).
    pub fn finish(&mut self) {
        if !self.partial.is_empty() || self.partial_cut {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
            self.partial_cut = false;
        }
    }

    /// The kept lines, oldest first.
    pub fn into_lines(self) -> Vec<Line> {
        self.ring.into()
    }

    /// Appends to the current line, up to the line cap.
    fn take(&mut self, data: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.partial.len());
        if data.len() > room {
            self.partial_cut = true;
        }
        self.partial
            .extend_from_slice(&data[..data.len().min(room)]);
    }

    fn line(&mut self, raw: &[u8]) {
        self.lines += 1;
        if self.partial_cut {
            self.cut_lines += 1;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let (stamp, body) = match (self.stamped, raw.iter().position(|b| *b == b' ')) {
            (true, Some(sp)) => (Some(&raw[..sp]), &raw[sp + 1..]),
            _ => (None, raw),
        };
        if self.pattern.is_some_and(|p| !p.is_match(body)) {
            return;
        }
        self.matched += 1;
        let mut text = String::from_utf8_lossy(body).into_owned();
        if self.partial_cut {
            text.push_str(" …(line cut)");
        }
        let line = Line {
            stamp: stamp.map(|s| String::from_utf8_lossy(s).into_owned()),
            text,
        };
        self.ring_bytes += line.size();
        self.ring.push_back(line);
        while self.ring_bytes > self.budget {
            match self.ring.pop_front() {
                Some(old) => {
                    self.ring_bytes -= old.size();
                    self.dropped += 1;
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(
        pattern: Option<&LogPattern>,
        stamped: bool,
        budget: usize,
        chunks: &[&[u8]],
    ) -> (Vec<String>, u64, u64, u64) {
        let mut s = Scan::new(pattern, stamped, budget);
        for c in chunks {
            s.feed(c);
        }
        s.finish();
        let (lines, matched, dropped) = (s.lines, s.matched, s.dropped);
        (
            s.into_lines().into_iter().map(|l| l.text).collect(),
            lines,
            matched,
            dropped,
        )
    }

    #[test]
    fn lines_split_across_chunks_are_whole() {
        let (kept, lines, matched, dropped) =
            scan_all(None, false, 1000, &[b"one\ntw", b"o\nthr", b"ee"]);
        assert_eq!(kept, ["one", "two", "three"]);
        assert_eq!((lines, matched, dropped), (3, 3, 0));
    }

    #[test]
    fn grep_keeps_the_newest_matches_within_the_budget() {
        let p = LogPattern::parse("grep", "(?i)error").unwrap();
        let log: String = (1..=100)
            .map(|i| {
                if i % 10 == 0 {
                    format!("ERROR {i:03}\n")
                } else {
                    format!("ok {i:03}\n")
                }
            })
            .collect();
        // Each kept line is 10 bytes: 3 fit in 30.
        let (kept, lines, matched, dropped) = scan_all(Some(&p), false, 30, &[log.as_bytes()]);
        assert_eq!(kept, ["ERROR 080", "ERROR 090", "ERROR 100"]);
        assert_eq!((lines, matched, dropped), (100, 10, 7));
    }

    #[test]
    fn stamps_are_not_searched_and_are_kept_apart() {
        let p = LogPattern::parse("grep", "^boot").unwrap();
        let mut s = Scan::new(Some(&p), true, 1000);
        s.feed(b"2026-01-01T00:00:00Z boot done\r\n2026-01-01T00:00:01Z not boot\n");
        s.finish();
        let kept = s.into_lines();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].stamp.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(kept[0].text, "boot done");
    }

    #[test]
    fn an_endless_line_stays_bounded() {
        let mut s = Scan::new(None, false, 1 << 20);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            s.feed(&chunk);
            assert!(s.partial.len() <= MAX_LINE_BYTES);
        }
        s.feed(b"\nshort\n");
        s.finish();
        assert_eq!(s.cut_lines, 1);
        let kept = s.into_lines();
        assert_eq!(kept.len(), 2);
        assert!(kept[0].text.ends_with("…(line cut)"));
        assert!(kept[0].text.len() < MAX_LINE_BYTES + 20);
        assert_eq!(kept[1].text, "short");
    }
}
