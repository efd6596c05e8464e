//! Asking the user to confirm a change (MCP elicitation), when the daemon
//! says a `[safety] confirm` rule holds it. The shim only relays: the
//! daemon decides which changes need a yes, keeps the plan, and audits the
//! answer it is given.

use nskd_proto::v1 as pb;
use prost::Message;
use rmcp::{
    Peer, RoleServer,
    service::{ElicitationError, ElicitationMode},
};
use serde::Deserialize;
use std::future::Future;

/// How long the user has to answer.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The daemon's request for a confirmation, if the response carries one.
pub fn needed(resp: &tonic::Response<pb::KubeResult>) -> Option<pb::ConfirmationNeeded> {
    let bytes = resp
        .metadata()
        .get_bin(nskd_proto::CONFIRM_HEADER)?
        .to_bytes()
        .ok()?;
    pb::ConfirmationNeeded::decode(bytes.as_ref()).ok()
}

/// The form the user fills in.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Confirm {
    /// Apply this change.
    confirm: bool,
}

rmcp::elicit_safe!(Confirm);

/// The question shown to the user.
pub fn question(n: &pb::ConfirmationNeeded) -> String {
    format!(
        "nskd: confirm this change? {} ({} changed diff lines, {} bytes; plan {})",
        n.summary, n.diff_lines, n.diff_bytes, n.plan
    )
}

/// Asks the user through the MCP client; what they answered, or
/// `Unavailable` when the client cannot ask.
pub async fn ask(peer: &Peer<RoleServer>, n: &pb::ConfirmationNeeded) -> pb::Confirmation {
    if !peer
        .supported_elicitation_modes()
        .contains(&ElicitationMode::Form)
    {
        return pb::Confirmation::Unavailable;
    }
    match peer
        .elicit_with_timeout::<Confirm>(question(n), Some(ANSWER_TIMEOUT))
        .await
    {
        Ok(Some(Confirm { confirm: true })) => pb::Confirmation::Accepted,
        Ok(Some(Confirm { confirm: false })) | Err(ElicitationError::UserDeclined) => {
            pb::Confirmation::Declined
        }
        Ok(None) | Err(ElicitationError::UserCancelled) => pb::Confirmation::Cancelled,
        Err(e) => {
            tracing::warn!(error = %e, "elicitation failed; the change is treated as unconfirmable");
            pb::Confirmation::Unavailable
        }
    }
}

/// A change call that can be sent again applying a plan with the user's
/// answer.
pub trait Confirmable: Sized {
    /// The same call with these change options.
    fn with_change(self, options: pb::ChangeOptions) -> Self;
}

/// Sends `call` with `send`; when the daemon answers that the change waits
/// for the user's confirmation, asks the user through the MCP client and
/// sends the call again with the plan and the answer (which the daemon
/// audits; a "no" sends nothing to the cluster).
pub async fn send_confirmed<C, S, Fut>(
    peer: &Peer<RoleServer>,
    call: C,
    send: S,
) -> Result<(pb::KubeResult, pb::DaemonInfo), String>
where
    C: Confirmable + Clone,
    S: Fn(C) -> Fut,
    Fut: Future<Output = Result<(tonic::Response<pb::KubeResult>, pb::DaemonInfo), String>>,
{
    let first = send(call.clone()).await;
    let Some(n) = first.as_ref().ok().and_then(|(r, _)| needed(r)) else {
        return first.map(|(r, info)| (r.into_inner(), info));
    };
    let answer = ask(peer, &n).await;
    let again = call.with_change(pb::ChangeOptions {
        dry_run: false,
        plan: n.plan.clone(),
        confirmation: answer as i32,
    });
    send(again).await.map(|(r, info)| (r.into_inner(), info))
}
