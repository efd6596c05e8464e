//! systemd: socket activation of the real nskd, and the units as
//! `nskctl install-units` writes them, checked by systemd-analyze.

use std::{
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
};

use nskd_e2e::{
    bins::bin,
    daemon::{Daemon, DaemonSpec, nskctl, text},
};

use crate::{eventually, rig_or_skip};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn nskd_serves_a_socket_passed_by_systemd_and_never_unlinks_it() {
    let Some(rig) = rig_or_skip() else { return };
    if !have("systemd-socket-activate") {
        eprintln!("SKIPPED: systemd-socket-activate not installed (Debian package systemd)");
        return;
    }
    let d = Daemon::prepare(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"])
    });
    let run = d.socket.parent().unwrap();
    std::fs::create_dir(run).unwrap();
    std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&d.socket)
        .arg(bin("nskd"))
        .arg("--config")
        .arg(&d.config)
        .arg("--socket")
        .arg(&d.socket)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&d.log).unwrap())
        .spawn()
        .unwrap();
    // The socket exists before nskd runs; the first connection starts it.
    let up = eventually(10.0, || d.socket.exists().then_some(()));
    assert!(
        up.is_some(),
        "systemd-socket-activate did not create the socket"
    );
    let out = nskctl(&d.socket, &["--json", "clusters"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\nlog:\n{}", d.log_text());
    assert!(stdout.contains("c1-sv5"), "{stdout}");
    assert!(
        d.log_text().contains("socket passed by systemd"),
        "{}",
        d.log_text()
    );

    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = eventually(15.0, || child.try_wait().ok().flatten());
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        d.log_text()
    );
    assert!(
        d.socket.exists(),
        "the daemon must not unlink a socket systemd owns"
    );
}

#[test]
fn installed_units_pass_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        eprintln!("SKIPPED: systemd-analyze not installed (Debian package systemd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    let out = Command::new(bin("nskctl"))
        .args(["--env", "prod", "install-units", "--dir"])
        .arg(&units)
        .arg("--nskd")
        .arg(bin("nskd"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("systemctl --user enable --now nskd@prod.socket"),
        "{stdout}"
    );
    let service = std::fs::read_to_string(units.join("nskd@.service")).unwrap();
    assert!(
        service.contains(&format!("ExecStart={} --env %i", bin("nskd").display())),
        "{service}"
    );
    assert!(service.contains("Type=notify"));
    let socket = std::fs::read_to_string(units.join("nskd@.socket")).unwrap();
    assert!(socket.contains("SocketMode=0600") && socket.contains("DirectoryMode=0700"));
    for kind in ["service", "socket"] {
        std::os::unix::fs::symlink(
            units.join(format!("nskd@.{kind}")),
            units.join(format!("nskd@e2e.{kind}")),
        )
        .unwrap();
    }
    let verify = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(units.join("nskd@e2e.service"))
        .arg(units.join("nskd@e2e.socket"))
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .unwrap();
    let (o, e) = text(&verify);
    assert!(
        verify.status.success(),
        "systemd-analyze verify failed:\n{o}{e}"
    );
}
