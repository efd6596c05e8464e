//! A kubectl-describe-style summary of one object: identity, labels,
//! the fields that matter for its kind, conditions, and its events.

use serde_json::Value;

use super::{
    OpOptions, Output, Rendered,
    get::{GetArgs, get},
    list::{ListArgs, list},
};
use crate::{
    error::OpError,
    pool::ClusterClient,
    request::names::{ApiVersion, KindName, Namespace, Selector},
};

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn map_lines(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m
            .iter()
            .filter(|(k, _)| k.as_str() != "kubectl.kubernetes.io/last-applied-configuration")
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
            .collect::<Vec<_>>()
            .join("\n              "),
        _ => "<none>".into(),
    }
}

/// The kind-specific part.
fn kind_details(kind: &str, o: &Value, out: &mut String) {
    use std::fmt::Write;
    match kind {
        "Pod" => {
            let _ = writeln!(
                out,
                "Node:         {}",
                if s(o, "/spec/nodeName").is_empty() {
                    "<none> (not scheduled)"
                } else {
                    s(o, "/spec/nodeName")
                }
            );
            let _ = writeln!(out, "Status:       {}", s(o, "/status/phase"));
            let _ = writeln!(
                out,
                "IP:           {}",
                if s(o, "/status/podIP").is_empty() {
                    "<none>"
                } else {
                    s(o, "/status/podIP")
                }
            );
            let _ = writeln!(out, "Containers:");
            let statuses = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for c in o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = s(c, "/name");
                let st = statuses.iter().find(|x| s(x, "/name") == name);
                let state = st
                    .and_then(|x| x.get("state"))
                    .and_then(Value::as_object)
                    .and_then(|m| m.keys().next().cloned())
                    .unwrap_or_else(|| "unknown".into());
                let restarts = st
                    .and_then(|x| x.get("restartCount"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let _ = writeln!(
                    out,
                    "  {name}:\n    Image:     {}\n    State:     {state}\n    Restarts:  {restarts}",
                    s(c, "/image")
                );
            }
        }
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let n = |p: &str| o.pointer(p).and_then(Value::as_u64).unwrap_or(0);
            let _ = writeln!(
                out,
                "Replicas:     {} desired | {} updated | {} ready | {} available",
                n("/spec/replicas"),
                n("/status/updatedReplicas"),
                n("/status/readyReplicas"),
                n("/status/availableReplicas")
            );
            let _ = writeln!(
                out,
                "Selector:     {}",
                map_lines(o.pointer("/spec/selector/matchLabels"))
            );
            for c in o
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let _ = writeln!(out, "Container:    {} ({})", s(c, "/name"), s(c, "/image"));
            }
        }
        "Service" => {
            let _ = writeln!(out, "Type:         {}", s(o, "/spec/type"));
            let _ = writeln!(out, "ClusterIP:    {}", s(o, "/spec/clusterIP"));
            let _ = writeln!(
                out,
                "Selector:     {}",
                map_lines(o.pointer("/spec/selector"))
            );
            for p in o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let _ = writeln!(
                    out,
                    "Port:         {} {}/{}",
                    s(p, "/name"),
                    p["port"],
                    s(p, "/protocol")
                );
            }
        }
        "Node" => {
            let _ = writeln!(
                out,
                "Kubelet:      {}",
                s(o, "/status/nodeInfo/kubeletVersion")
            );
            let _ = writeln!(
                out,
                "OS/Arch:      {}/{}",
                s(o, "/status/nodeInfo/operatingSystem"),
                s(o, "/status/nodeInfo/architecture")
            );
            let _ = writeln!(
                out,
                "Capacity:     cpu {} memory {}",
                s(o, "/status/capacity/cpu"),
                s(o, "/status/capacity/memory")
            );
        }
        _ => {}
    }
    if let Some(conds) = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    {
        let _ = writeln!(out, "Conditions:");
        for c in conds {
            let _ = writeln!(
                out,
                "  {:<20} {:<6} {}",
                s(c, "/type"),
                s(c, "/status"),
                s(c, "/reason")
            );
        }
    }
}

/// Describes one object, with its events.
pub async fn describe(
    cc: &ClusterClient,
    args: &GetArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    use std::fmt::Write;
    let json = GetArgs {
        output: Output::Json,
        ..args.clone()
    };
    let got = get(cc, &json, opts).await?;
    let o: Value = serde_json::from_str(&got.text)
        .map_err(|e| OpError::InvalidArgument(format!("unexpected answer: {e}")))?;
    let kind = s(&o, "/kind").to_string();
    let mut out = String::new();
    let _ = writeln!(out, "Name:         {}", s(&o, "/metadata/name"));
    if !s(&o, "/metadata/namespace").is_empty() {
        let _ = writeln!(out, "Namespace:    {}", s(&o, "/metadata/namespace"));
    }
    let _ = writeln!(out, "Kind:         {kind} ({})", s(&o, "/apiVersion"));
    let _ = writeln!(
        out,
        "Created:      {}",
        s(&o, "/metadata/creationTimestamp")
    );
    let _ = writeln!(
        out,
        "Labels:       {}",
        map_lines(o.pointer("/metadata/labels"))
    );
    let _ = writeln!(
        out,
        "Annotations:  {}",
        map_lines(o.pointer("/metadata/annotations"))
    );
    kind_details(&kind, &o, &mut out);
    // Identity from the checked request (the answer matched it), values
    // escaped as the API server's field selectors require.
    let mut selector = format!(
        "{},{}",
        Selector::field_equals("involvedObject.name", args.name.as_str()),
        Selector::field_equals("involvedObject.kind", &kind)
    );
    let namespace = s(&o, "/metadata/namespace");
    let namespace = Namespace::optional("namespace", namespace).ok().flatten();
    if let Some(ns) = &namespace {
        selector.push_str(&format!(",involvedObject.namespace={ns}"));
    }
    let events = list(
        cc,
        &ListArgs {
            api_version: Some(ApiVersion::parse("apiVersion", "v1").expect("v1")),
            kind: KindName::parse("kind", "Event").expect("a kind name"),
            namespace,
            label_selector: None,
            field_selector: Selector::optional("fieldSelector", &selector)
                .ok()
                .flatten(),
            limit: 0,
            output: Output::Table,
            live: false,
            objects: false,
        },
        opts,
    )
    .await;
    let _ = writeln!(out, "Events:");
    match events {
        Ok(r) if r.items == 0 => out.push_str("  <none>\n"),
        Ok(r) => out.extend(r.text.lines().map(|l| format!("  {l}\n"))),
        Err(e) => {
            let _ = writeln!(out, "  (could not list events: {e})");
        }
    }
    Ok(Rendered {
        text: out,
        items: 1,
        omitted: 0,
        ..Default::default()
    })
}
