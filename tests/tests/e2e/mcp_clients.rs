//! The agent contract, proven with clients nobody here wrote: the official
//! Python MCP SDK and the MCP Inspector CLI (installed, pinned, by
//! tests/clients/setup.sh), plus the toolset switches and the size budget.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use nskd_e2e::{
    bins::bin,
    daemon::{Daemon, DaemonSpec, text},
    mcp::Shim,
    rig::DISRUPTABLE,
};
use rmcp::{ClientHandler, ServiceExt, model::CallToolRequestParams, service::NotificationContext};
use serde_json::{Value, json};

use crate::rig_or_skip;

/// The revisions rmcp serves over an `initialize` handshake.
const REVISIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The clients' cache (tests/clients/setup.sh installs into it).
fn clients() -> PathBuf {
    let base = std::env::var_os("NSKD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/nskd-test"));
    base.join("clients")
}

/// Runs tests/clients/setup.sh once per test process; panics with its
/// stderr when it fails (a missing client must not pass as a skip).
fn setup() -> PathBuf {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/setup.sh");
    let result = DONE.get_or_init(|| {
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = result {
        panic!("{} failed: {e}", script.display());
    }
    clients()
}

fn python(args: &[&str], socket: &Path) -> Command {
    let dir = setup();
    let mut cmd = Command::new(dir.join("venv/bin/python"));
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/sdk_client.py"))
        .args(args)
        .arg("--")
        .arg(bin("mcp-shim"))
        .arg("--socket")
        .arg(socket)
        .env_remove("NSKD_ENV");
    cmd
}

/// The JSON lines a client printed, by step.
fn steps(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn step<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|v| v["step"] == name)
        .unwrap_or_else(|| panic!("no {name} step in {all:?}"))
}

/// `nskd check-config` on a file holding `toml`: it must fail, and its
/// output must name each of `wanted`.
fn check_config_refuses(dir: &Path, toml: &str, wanted: &[&str]) {
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, toml).unwrap();
    let out = Command::new(bin("nskd"))
        .arg("check-config")
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    let all = format!("{stdout}{stderr}");
    assert!(!out.status.success(), "{all}");
    for want in wanted {
        assert!(all.contains(want), "{want} not in {all}");
    }
}

#[test]
fn python_sdk_speaks_every_revision_with_tools_prompts_and_resources() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        default_cluster: Some("c1-dfw1".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-dfw1"]));
    for revision in REVISIONS {
        let out = python(&["session", revision, "namespaces_list", "{}"], &d.socket)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{revision}: {stdout}\n{stderr}");
        let all = steps(&stdout);
        let init = step(&all, "initialize");
        assert_eq!(init["protocol"], *revision, "{init}");
        assert_eq!(init["server"], "nskd-mcp-shim");
        for cap in ["prompts", "resources", "subscribe", "tools_list_changed"] {
            assert_eq!(init[cap], true, "{revision}: {cap} in {init}");
        }
        let instructions = init["instructions"].as_str().unwrap();
        for word in ["clusters_status", "\"*\"", "watch cache", "live"] {
            assert!(instructions.contains(word), "{word} not in {instructions}");
        }
        let names = step(&all, "tools/list")["names"].to_string();
        assert!(
            names.contains("\"pods_list\"") && names.contains("\"resources_get\""),
            "{names}"
        );
        let call = step(&all, "tools/call");
        assert_eq!(call["is_error"], false, "{call}");
        assert!(call["text"].as_str().unwrap().contains("shop"), "{call}");
        assert_eq!(
            step(&all, "prompts/list")["names"],
            json!(["fleet_health", "debug_pod", "cluster_compare"])
        );
        let prompt = step(&all, "prompts/get")["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            prompt.contains("web-1") && prompt.contains("namespace shop"),
            "{prompt}"
        );
        let resources = step(&all, "resources/list");
        assert_eq!(
            resources["uris"],
            json!(["nskd://clusters", "nskd://refresh"])
        );
        assert_eq!(resources["templates"], json!(["nskd://clusters/{name}"]));
        let table = step(&all, "resources/read")["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            table.contains("c1-dfw1") && table.contains("STATUS"),
            "{table}"
        );
    }
}

/// Sets a node back to Ready when the test ends, passing or not.
struct NodeBack<'a>(&'a nskd_e2e::rig::Rig);

impl Drop for NodeBack<'_> {
    fn drop(&mut self) {
        self.0.set_node_ready(DISRUPTABLE, "node-2", true);
    }
}

#[test]
fn python_sdk_subscription_is_updated_when_a_cluster_health_changes() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &[DISRUPTABLE, "c1-sv5"])
    });
    let one = format!("nskd://clusters/{DISRUPTABLE}");
    let other = "nskd://clusters/c1-sv5";
    let uris = format!("nskd://clusters,{one},{other}");
    let mut child = python(&["subscribe", &uris, "25"], &d.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("subscribed"), "{first}");
    // The shim has its baseline after one poll; then the cluster degrades.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let _back = NodeBack(rig);
    rig.set_node_ready(DISRUPTABLE, "node-2", false);
    let rest: Vec<Value> = lines
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    let updated: Vec<&str> = rest
        .iter()
        .filter(|v| v["step"] == "updated")
        .filter_map(|v| v["uri"].as_str())
        .collect();
    assert!(updated.contains(&"nskd://clusters"), "{rest:?}");
    assert!(updated.contains(&one.as_str()), "{rest:?}");
    // Only the cluster that changed is updated.
    assert!(!updated.contains(&other), "{rest:?}");
}

fn inspector(socket: &Path, method: &[&str]) -> (bool, String) {
    let dir = setup();
    let out = Command::new(dir.join("node_modules/.bin/mcp-inspector"))
        .arg("--cli")
        .arg(bin("mcp-shim"))
        .arg("--socket")
        .arg(socket)
        .args(method)
        .env_remove("NSKD_ENV")
        .current_dir(dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

#[test]
fn inspector_cli_lists_calls_gets_prompts_and_reads_resources() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        default_cluster: Some("c1-dfw1".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-dfw1"]));
    let (ok, out) = inspector(&d.socket, &["--method", "tools/list"]);
    assert!(ok, "{out}");
    let tools: Value = serde_json::from_str(&out).unwrap();
    let compact = serde_json::to_vec(&tools).unwrap().len();
    assert!(compact <= 16 * 1024, "tools/list is {compact} bytes");
    assert!(
        out.contains("\"pods_list\"") && !out.contains("\"null\""),
        "{out}"
    );

    let (ok, out) = inspector(
        &d.socket,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "pods_list",
            "--tool-arg",
            "namespace=shop",
        ],
    );
    assert!(
        ok && out.contains("NAME") && !out.contains("\"isError\": true"),
        "{out}"
    );

    let (ok, out) = inspector(
        &d.socket,
        &[
            "--method",
            "prompts/get",
            "--prompt-name",
            "debug_pod",
            "--prompt-args",
            "name=web-1",
        ],
    );
    assert!(ok && out.contains("Debug pod web-1"), "{out}");

    let (ok, out) = inspector(
        &d.socket,
        &[
            "--method",
            "resources/read",
            "--uri",
            "nskd://clusters/c1-dfw1",
        ],
    );
    assert!(ok && out.contains("c1-dfw1"), "{out}");

    // A hostile URI is refused before anything reaches the daemon.
    let (ok, out) = inspector(
        &d.socket,
        &[
            "--method",
            "resources/read",
            "--uri",
            "nskd://clusters/..%2f..%2fetc",
        ],
    );
    assert!(!ok && out.contains("not a cluster name"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toolsets_hide_and_refuse_tools_and_a_session_may_narrow_further() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        default_cluster: Some("c1-dfw1".into()),
        server: "toolsets = [\"core\", \"clusters\"]\nenabled_tools = [\"nodes_list\"]\ndisabled_tools = [\"pods_log\"]\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-dfw1"]));
    let shim = Shim::start(&d.socket).await;
    let names: Vec<String> = shim
        .tools()
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    for want in ["pods_list", "cluster_use", "nodes_list"] {
        assert!(names.contains(&want.to_string()), "{want} not in {names:?}");
    }
    for hidden in ["pods_log", "nodes_top", "resources_delete", "nsk_refresh"] {
        assert!(
            !names.contains(&hidden.to_string()),
            "{hidden} in {names:?}"
        );
    }
    // Called anyway (a client with a stale list): the daemon refuses.
    let refused = shim.err("nodes_top", json!({})).await;
    assert!(
        refused.contains("not offered") && refused.contains("enabled_tools"),
        "{refused}"
    );
    shim.close().await;

    let narrow = Shim::start_with(&d.socket, &["--toolsets", "clusters"]).await;
    let names: Vec<String> = narrow
        .tools()
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"clusters_status".to_string()), "{names:?}");
    assert!(!names.contains(&"pods_list".to_string()), "{names:?}");
    let refused = narrow.err("pods_list", json!({})).await;
    assert!(refused.contains("--toolsets clusters"), "{refused}");
    narrow.close().await;

    // doctor shows what a session sees.
    let out = d.nskctl(&["doctor"]);
    let (stdout, _) = text(&out);
    let line = stdout
        .lines()
        .find(|l| l.contains("mcp tools"))
        .unwrap_or_default();
    assert!(
        line.contains("pods_list") && line.contains("hidden:") && line.contains("pods_log"),
        "{stdout}"
    );

    // Unknown names refuse to start, listing the valid ones.
    let out = Command::new(bin("mcp-shim"))
        .args(["--toolsets", "kore"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success() && stderr.contains("core, changes, nodes, helm, nsk, clusters"),
        "{stderr}"
    );
    check_config_refuses(
        d.home.path(),
        "[server]\ntoolsets = [\"core\", \"kore\"]\ndisabled_tools = [\"pods_lgo\"]\n",
        &[
            "server.toolsets",
            "\"kore\"",
            "valid toolsets: core",
            "server.disabled_tools",
            "\"pods_lgo\"",
            "pods_log",
        ],
    );
}

/// Counts `notifications/tools/list_changed`.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl ClientHandler for Counter {
    async fn on_tool_list_changed(&self, _ctx: NotificationContext<rmcp::RoleClient>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_restarted_with_other_tools_sends_tools_list_changed() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        default_cluster: Some("c1-dfw1".into()),
        ..DaemonSpec::default()
    };
    let mut d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-dfw1"]));
    let counter = Counter::default();
    let mut cmd = tokio::process::Command::new(bin("mcp-shim"));
    cmd.arg("--socket").arg(&d.socket).env_remove("NSKD_ENV");
    let client = counter
        .clone()
        .serve(rmcp::transport::TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap();
    let before = client.list_all_tools().await.unwrap();
    assert!(before.iter().any(|t| t.name == "resources_delete"));
    let call = || CallToolRequestParams::new("clusters_list");
    client.call_tool(call()).await.unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 0, "no change yet");

    // The same daemon, restarted read-only with fewer toolsets.
    d.terminate();
    let config = std::fs::read_to_string(&d.config).unwrap();
    let config = config.replacen(
        "[server]\n",
        "read_only = true\n[server]\ntoolsets = [\"core\", \"clusters\"]\n",
        1,
    );
    std::fs::write(&d.config, config).unwrap();
    d.spawn();
    // The shim asks what the daemon offers at most once a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    client.call_tool(call()).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while counter.0.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "{}", d.log_text());
    let after = client.list_all_tools().await.unwrap();
    assert!(
        !after
            .iter()
            .any(|t| t.name == "resources_delete" || t.name == "nodes_list")
    );
    let _ = client.cancel().await;
}

#[test]
fn user_prompts_from_the_config_are_served_and_bad_ones_refused() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        sections: format!(
            "{}\n[[prompts]]\nname = \"shop_check\"\ndescription = \"Check the shop\"\ntext = \"Look at namespace {{ns}} first.\"\narguments = [\"ns\"]\n",
            DaemonSpec::default().sections
        ),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-dfw1"]));
    let (ok, out) = inspector(&d.socket, &["--method", "prompts/list"]);
    assert!(
        ok && out.contains("\"shop_check\"") && out.contains("\"debug_pod\""),
        "{out}"
    );
    let (ok, out) = inspector(
        &d.socket,
        &[
            "--method",
            "prompts/get",
            "--prompt-name",
            "shop_check",
            "--prompt-args",
            "ns=shop",
        ],
    );
    assert!(ok && out.contains("Look at namespace shop first."), "{out}");
    let (ok, out) = inspector(
        &d.socket,
        &["--method", "prompts/get", "--prompt-name", "shop_check"],
    );
    assert!(!ok && out.contains("argument ns is required"), "{out}");

    check_config_refuses(
        d.home.path(),
        "[[prompts]]\nname = \"debug_pod\"\ntext = \"x\"\n\n[[prompts]]\nname = \"a b\"\ntext = \"\"\n",
        &[
            "prompts[0].name",
            "is a built-in prompt",
            "prompts[1].name",
            "prompts[1].text",
        ],
    );
}
