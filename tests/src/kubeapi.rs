//! Direct calls to a rig cluster's API server with its admin token, for
//! tests that change objects behind nskd's back or read the API server's
//! own request counters.

use std::process::Command;

use crate::rig::RigCluster;

/// Sends `method path` (with a JSON `body`) to `c`'s API server; returns
/// the response body. Panics naming the call when it fails.
pub fn call(c: &RigCluster, method: &str, path: &str, body: Option<&str>) -> String {
    try_call(c, method, path, body).unwrap_or_else(|e| panic!("{e}"))
}

/// [`call`] that reports a failure instead of panicking.
pub fn try_call(
    c: &RigCluster,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<String, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail-with-body", "-X", method, "--cacert"])
        .arg(&c.ca)
        .args(["-H", &format!("Authorization: Bearer {}", c.admin_token)]);
    if let Some(body) = body {
        let content_type = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        cmd.args([
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data",
            body,
        ]);
    }
    let out = cmd
        .arg(format!("{}{path}", c.server))
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!(
            "{method} {path} on {} failed: {text} {}",
            c.name,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(text)
}

/// How many LIST requests for `resource` with `scope` ("namespace",
/// "cluster") the API server has answered, from its own
/// `apiserver_request_total` metric.
pub fn list_requests(c: &RigCluster, resource: &str, scope: &str) -> u64 {
    let metrics = call(c, "GET", "/metrics", None);
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| {
            l.contains("verb=\"LIST\"")
                && l.contains(&format!("resource=\"{resource}\""))
                && l.contains(&format!("scope=\"{scope}\""))
                && l.contains("group=\"\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
