//! nskctl doctor: one line per check, PASS / WARN / FAIL, non-zero exit
//! when anything fails.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use nskd_proto::{
    client::NskdClient,
    present::{latency, state_word},
    socket::SocketLocation,
    v1::{ClusterStatusRequest, SourceStatusRequest},
};

/// Expiry closer than this is a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Default)]
struct Report {
    failed: usize,
    warned: usize,
}

impl Report {
    fn pass(&mut self, what: &str, detail: impl AsRef<str>) {
        println!("PASS  {what}: {}", detail.as_ref());
    }
    fn warn(&mut self, what: &str, detail: impl AsRef<str>) {
        self.warned += 1;
        println!("WARN  {what}: {}", detail.as_ref());
    }
    fn fail(&mut self, what: &str, detail: impl AsRef<str>) {
        self.failed += 1;
        println!("FAIL  {what}: {}", detail.as_ref());
    }

    /// An expiry (unix ms; 0 = unknown) of `what`.
    fn expiry(&mut self, what: &str, ms: i64) {
        if ms <= 0 {
            return;
        }
        let at = UNIX_EPOCH + Duration::from_millis(ms as u64);
        match at.duration_since(SystemTime::now()) {
            Err(_) => self.fail(
                what,
                format!("EXPIRED at {}", nskd_proto::present::timestamp(ms)),
            ),
            Ok(left) if left < EXPIRY_WARNING => self.warn(
                what,
                format!(
                    "expires in {}",
                    humantime::format_duration(Duration::from_secs(left.as_secs()))
                ),
            ),
            Ok(left) => self.pass(what, format!("{} days left", left.as_secs() / 86_400)),
        }
    }
}

/// What an MCP session sees: the tools offered per toolset, and those the
/// configuration or the safety switches hide.
fn tools_line(hidden: &[String], r: &mut Report) {
    use nskd_proto::tools::{TOOL_TOOLSETS, TOOLSETS};
    let offered = |set: &str| {
        TOOL_TOOLSETS
            .iter()
            .filter(|(t, s)| *s == set && !hidden.iter().any(|h| h == t))
            .map(|(t, _)| *t)
            .collect::<Vec<_>>()
    };
    let total = TOOL_TOOLSETS.len();
    let shown = TOOL_TOOLSETS
        .iter()
        .filter(|(t, _)| !hidden.iter().any(|h| h == t))
        .count();
    let sets: Vec<String> = TOOLSETS
        .iter()
        .map(|set| (set, offered(set)))
        .filter(|(_, tools)| !tools.is_empty())
        .map(|(set, tools)| format!("{set}: {}", tools.join(" ")))
        .collect();
    let mut line = format!(
        "{shown} of {total} offered to sessions; {}",
        sets.join("; ")
    );
    if !hidden.is_empty() {
        line.push_str(&format!("; hidden: {}", hidden.join(" ")));
    }
    if shown == 0 {
        r.warn(
            "mcp tools",
            format!("{line} (check [server] toolsets / disabled_tools and read_only)"),
        );
    } else {
        r.pass("mcp tools", line);
    }
}

fn check_socket(location: &SocketLocation, r: &mut Report) {
    let uid = rustix::process::getuid().as_raw();
    match std::fs::symlink_metadata(location.dir()) {
        Err(e) => r.fail(
            "socket directory",
            format!("{}: {e}", location.dir().display()),
        ),
        Ok(m) if m.uid() != uid => r.fail(
            "socket directory",
            format!(
                "{} belongs to uid {}, not to you (uid {uid})",
                location.dir().display(),
                m.uid()
            ),
        ),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => r.fail(
            "socket directory",
            format!(
                "{} has mode {:04o}; run `chmod 700 {}`",
                location.dir().display(),
                m.permissions().mode() & 0o777,
                location.dir().display()
            ),
        ),
        Ok(_) => r.pass(
            "socket directory",
            format!("{} (0700, yours)", location.dir().display()),
        ),
    }
    match std::fs::metadata(&location.path) {
        Err(e) => r.fail("socket", format!("{}: {e}", location.path.display())),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => r.fail(
            "socket",
            format!(
                "{} has mode {:04o}; others could connect (the daemon still refuses them)",
                location.path.display(),
                m.permissions().mode() & 0o777
            ),
        ),
        Ok(_) => r.pass("socket", format!("{} (0600)", location.path.display())),
    }
}

/// Runs every check.
pub async fn run(location: &SocketLocation) -> anyhow::Result<ExitCode> {
    let mut r = Report::default();
    check_socket(location, &mut r);
    let client = match NskdClient::connect(
        location,
        &format!("nskctl {} (doctor)", env!("CARGO_PKG_VERSION")),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            r.fail("daemon", e.to_string());
            return Ok(summary(&r));
        }
    };
    let info = client.info();
    r.pass(
        "daemon",
        format!(
            "nskd {} (API v{}) serving environment {}, pid {}, up {}s",
            info.version, info.api_version, info.environment, info.pid, info.uptime_seconds
        ),
    );
    if info.version == env!("CARGO_PKG_VERSION") {
        r.pass(
            "versions",
            format!("nskctl and nskd are both {}", info.version),
        );
    } else {
        r.warn(
            "versions",
            format!(
                "nskctl {} and nskd {} differ (same API v{}); install both from one release",
                env!("CARGO_PKG_VERSION"),
                info.version,
                info.api_version
            ),
        );
    }
    tools_line(&info.hidden_tools, &mut r);
    if info.helm_unavailable.is_empty() {
        r.pass(
            "helm writes",
            "helm found: helm_install/upgrade/rollback/uninstall offered",
        );
    } else {
        r.warn(
            "helm writes",
            format!(
                "helm_install/upgrade/rollback/uninstall hidden: {}",
                info.helm_unavailable
            ),
        );
    }

    let source = client
        .clusters()
        .source_status(client.request(SourceStatusRequest { verify: true }))
        .await
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner();
    if source.source == "directory" {
        r.pass(
            "config",
            format!("loaded; directory source ({})", source.kubeconfig_dir),
        );
    } else {
        r.pass(
            "config",
            format!(
                "loaded; {} source, Rancher {}",
                source.source, source.rancher_url
            ),
        );
        match source.token_check.as_str() {
            "ok" => r.pass(
                "rancher token",
                format!("valid (user {})", source.token_user),
            ),
            "failed" => r.fail("rancher token", &source.token_error),
            _ if !source.token_set => r.warn(
                "rancher token",
                "not set; nsk must authenticate from its own profile",
            ),
            _ => r.warn("rancher token", "not checked"),
        }
        r.expiry("rancher token expiry", source.token_expiry_ms);
        match &source.last_refresh {
            Some(last) => {
                let word = nskd_proto::refresh_view::outcome_word(last.outcome);
                let line = nskd_proto::refresh_view::record_summary(last);
                match word {
                    "Success" => r.pass("last refresh", line),
                    "Partial" => r.warn("last refresh", line),
                    _ => r.fail("last refresh", line),
                }
            }
            None => r.warn("last refresh", "none yet (nskctl refresh)"),
        }
    }

    let status = client
        .clusters()
        .cluster_status(client.request(ClusterStatusRequest {
            clusters: vec![],
            refresh: true,
            detail: false,
        }))
        .await
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner();
    if status.clusters.is_empty() {
        r.warn("clusters", "none known");
    }
    for h in &status.clusters {
        let what = format!("cluster {}", h.name);
        match state_word(h.state) {
            "Ready" => r.pass(
                &what,
                format!(
                    "Ready {} {}/{} nodes, latency {}",
                    h.version,
                    h.nodes_ready,
                    h.nodes_total,
                    latency(h.latency_us)
                ),
            ),
            "Degraded" => r.warn(&what, format!("Degraded: {}", h.degraded_reason)),
            word => r.fail(
                &what,
                format!("{word}: {}", nskd_proto::present::one_line(&h.error, 160)),
            ),
        }
        if let Some(info) = &h.info {
            r.expiry(&format!("{} token expiry", h.name), info.token_expiry_ms);
            r.expiry(
                &format!("{} certificate expiry", h.name),
                info.cert_expiry_ms,
            );
        }
    }
    Ok(summary(&r))
}

fn summary(r: &Report) -> ExitCode {
    println!("\n{} failed, {} warning(s)", r.failed, r.warned);
    if r.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
