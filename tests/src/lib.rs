//! Test rig for nskd's end-to-end tests: real kube-apiservers (built once
//! and cached outside the repo), the real nskd / mcp-shim / nskctl
//! binaries, an MCP client, and unreachable endpoints (refused, black hole).

pub mod apiserver_audit;
pub mod bench;
pub mod bins;
pub mod daemon;
pub mod endpoints;
pub mod fake_nsk;
pub mod fake_rancher;
pub mod go_server;
pub mod helm;
pub mod hostile;
pub mod kubeapi;
pub mod mcp;
pub mod mcp_http;
pub mod oidc;
pub mod rig;
