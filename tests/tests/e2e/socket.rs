//! The socket's lifecycle and access control.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    process::Command,
};

use nskd_e2e::{
    bins::{as_other_user, bin},
    daemon::{Daemon, DaemonSpec, text},
};

use crate::{eventually, rig_or_skip};

#[test]
fn socket_is_private_and_a_second_daemon_is_refused() {
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"])
    });
    let sock = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(sock.permissions().mode() & 0o777, 0o600);
    let dir = std::fs::metadata(d.socket.parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);

    let out = Command::new(bin("nskd"))
        .arg("--config")
        .arg(&d.config)
        .arg("--socket")
        .arg(&d.socket)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("another nskd already serves environment 'e2e'"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", d.pid().unwrap())),
        "{stderr}"
    );
    // The first daemon is untouched.
    assert!(d.nskctl(&["clusters"]).status.success());
}

#[test]
fn stale_socket_is_replaced_and_sigterm_removes_it() {
    let Some(rig) = rig_or_skip() else { return };
    let mut d = Daemon::prepare(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"])
    });
    // A socket file left by a crashed daemon: bound, then its listener gone.
    std::fs::create_dir(d.socket.parent().unwrap()).unwrap();
    std::fs::set_permissions(
        d.socket.parent().unwrap(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(&d.socket).unwrap());
    assert!(d.socket.exists());
    d.spawn();
    assert!(d.nskctl(&["clusters"]).status.success(), "{}", d.log_text());

    let status = d.terminate().unwrap();
    assert!(
        status.success(),
        "SIGTERM exit: {status}; log:\n{}",
        d.log_text()
    );
    assert!(!d.socket.exists(), "socket left behind after SIGTERM");
}

#[test]
fn an_open_or_foreign_socket_directory_is_refused() {
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::prepare(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"])
    });
    let run = d.socket.parent().unwrap();
    std::fs::create_dir(run).unwrap();
    std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(bin("nskd"))
        .arg("--config")
        .arg(&d.config)
        .arg("--socket")
        .arg(&d.socket)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("chmod 700") && stderr.contains(&run.display().to_string()),
        "{stderr}"
    );

    std::fs::remove_dir(run).unwrap();
    std::os::unix::fs::symlink(d.home.path(), run).unwrap();
    let out = Command::new(bin("nskd"))
        .arg("--config")
        .arg(&d.config)
        .arg("--socket")
        .arg(&d.socket)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("symlink"), "{stderr}");
}

/// Runs nskctl as uid/gid 65534 with only CAP_DAC_OVERRIDE, so the file
/// permissions let it reach the socket: the client refuses a daemon of
/// another user before sending anything, and a raw connection (curl) meets
/// the daemon's own peer check.
#[test]
fn other_users_are_refused_by_the_peer_check() {
    let Some(rig) = rig_or_skip() else { return };
    if rustix::process::geteuid().as_raw() != 0
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!(
            "SKIPPED other_users_are_refused_by_the_peer_check: needs root and setpriv to act as another uid"
        );
        return;
    }
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"])
    });
    let out = as_other_user(bin("nskctl"))
        .arg("--socket")
        .arg(&d.socket)
        .arg("clusters")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "another uid got an answer: {stdout}");
    assert!(
        stderr.contains("refusing to talk to nskd")
            && stderr.contains("belongs to uid 0")
            && stderr.contains("uid 65534"),
        "{stderr}"
    );
    assert!(!stdout.contains("c1-sv5"), "{stdout}");
    // A client that skips those checks meets the daemon's peer check.
    let out = as_other_user("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "--http2-prior-knowledge",
            "--unix-socket",
        ])
        .arg(&d.socket)
        .arg("http://nskd/nskd.v1.Daemon/GetInfo")
        .output()
        .unwrap();
    assert!(!text(&out).0.contains("c1-sv5"));
    let log = eventually(5.0, || {
        let log = d.log_text();
        (log.contains("refused") && log.contains("65534")).then_some(log)
    });
    let log = log.unwrap_or_else(|| d.log_text());
    assert!(
        log.contains("refused") && log.contains("65534"),
        "daemon log must name the refused uid:\n{log}"
    );
    // Its own user still gets in.
    assert!(d.nskctl(&["clusters"]).status.success());
    assert_eq!(std::fs::metadata(&d.socket).unwrap().uid(), 0);
}
