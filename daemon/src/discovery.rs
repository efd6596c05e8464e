//! Finding clusters on disk: every kubeconfig in `kubeconfig_dir` (one
//! cluster per file, or per context when a file has several) and every
//! context of a single kubeconfig file. Parsed files are cached by
//! (modification time, size) so a rescan after one file event re-reads one
//! file; a forced rescan (the TTL safety net) re-reads them all.

use std::{
    collections::{BTreeMap, HashMap},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use crate::{
    config::{Config, SourceKind},
    kubeconfig::trust::{self as kubeconfig_trust, Trust},
    kubeconfig::{self, KubeconfigFile, hash_bytes},
    registry::{ClusterEntry, EntrySource},
};

/// File extensions read as kubeconfigs in `kubeconfig_dir` (plus none).
const EXTENSIONS: &[&str] = &["yaml", "yml", "kubeconfig", "conf", "config", "json"];

/// What to scan.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    /// Directory of kubeconfigs.
    pub dir: Option<PathBuf>,
    /// Single multi-context kubeconfig files (KUBECONFIG may name several).
    pub files: Vec<PathBuf>,
    /// How files of `dir` are labelled.
    pub dir_source: EntrySource,
}

impl ScanPlan {
    /// From the configuration: `kubeconfig_dir` and `kubeconfig`; with
    /// neither, `$KUBECONFIG` or `~/.kube/config`.
    pub fn from_config(config: &Config) -> Self {
        let dir_source = match config.nsk.source {
            SourceKind::Directory => EntrySource::Directory,
            SourceKind::Nsk => EntrySource::Nsk,
            SourceKind::Rancher => EntrySource::Rancher,
        };
        let mut files: Vec<PathBuf> = config.kubeconfig.iter().cloned().collect();
        if files.is_empty() && config.kubeconfig_dir.is_none() {
            files = default_kubeconfig_files();
        }
        Self {
            dir: config.kubeconfig_dir.clone(),
            files,
            dir_source,
        }
    }

    /// Directories to watch for changes (the dir, and each file's parent,
    /// since editors and nsk replace files by rename).
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.dir.iter().cloned().collect();
        for f in &self.files {
            if let Some(parent) = f.parent()
                && !dirs.iter().any(|d| d == parent)
            {
                dirs.push(parent.to_path_buf());
            }
        }
        dirs
    }
}

fn default_kubeconfig_files() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    std::env::var_os("HOME")
        .map(|home| vec![PathBuf::from(home).join(".kube").join("config")])
        .unwrap_or_default()
}

/// Result of one scan.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Every cluster found (unusable ones carry an error).
    pub entries: Vec<ClusterEntry>,
    /// Problems not tied to one cluster (missing dir, duplicate names).
    pub problems: Vec<String>,
}

/// Scans disk into registry entries, caching parsed files. Every file is
/// checked by [`kubeconfig_trust`] before kube-rs may see it: a refused one
/// becomes an unusable entry naming the refused field.
#[derive(Debug)]
pub struct Scanner {
    plan: ScanPlan,
    cache: Mutex<HashMap<PathBuf, Arc<KubeconfigFile>>>,
    /// Clusters whose fetched kubeconfig was refused and never stored,
    /// with the reason: shown as unusable entries so the refusal is seen.
    refused: Mutex<BTreeMap<String, String>>,
}

impl Scanner {
    /// A scanner for `plan`.
    pub fn new(plan: ScanPlan) -> Self {
        Self {
            plan,
            cache: Mutex::new(HashMap::new()),
            refused: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records that the kubeconfig fetched for `name` was refused
    /// (`reason` names the field); until one is accepted, a cluster with no
    /// stored file shows as unusable with that reason.
    pub fn set_refused(&self, name: &str, reason: String) {
        self.refused
            .lock()
            .expect("scanner refused poisoned")
            .insert(name.to_string(), reason);
    }

    /// Forgets refusals of clusters for which `keep` is false (a good
    /// kubeconfig was stored, or the cluster is gone from the source).
    pub fn retain_refused(&self, keep: impl Fn(&str) -> bool) {
        self.refused
            .lock()
            .expect("scanner refused poisoned")
            .retain(|n, _| keep(n));
    }

    /// What this scanner reads.
    pub fn plan(&self) -> &ScanPlan {
        &self.plan
    }

    /// Scans everything. With `reread`, files are read again even when their
    /// modification time and size look unchanged.
    pub fn scan(&self, config: &Config, reread: bool) -> ScanResult {
        let mut result = ScanResult::default();
        let mut by_name: BTreeMap<String, ClusterEntry> = BTreeMap::new();
        let mut seen_paths = Vec::new();

        let dir_trust = Trust::of_dir(config);
        let local = Trust::local(config);
        if let Some(dir) = &self.plan.dir {
            match list_dir(dir) {
                Ok(paths) => {
                    for path in paths {
                        let stem = file_stem(&path);
                        let entries = self.entries_for(
                            &path,
                            Some(&stem),
                            self.plan.dir_source,
                            &dir_trust,
                            reread,
                        );
                        seen_paths.push(path);
                        add_entries(&mut by_name, entries, &mut result.problems);
                    }
                }
                Err(e) => result.problems.push(format!(
                    "kubeconfig_dir {}: {e}; create it (mkdir -m 700 {}) or fix kubeconfig_dir",
                    dir.display(),
                    dir.display()
                )),
            }
        }
        for file in &self.plan.files {
            if !file.exists() {
                if self.plan.dir.is_none() {
                    result.problems.push(format!(
                        "kubeconfig {} does not exist; set kubeconfig or kubeconfig_dir in the config",
                        file.display()
                    ));
                }
                continue;
            }
            let entries = self.entries_for(file, None, EntrySource::Kubeconfig, &local, reread);
            seen_paths.push(file.clone());
            add_entries(&mut by_name, entries, &mut result.problems);
        }
        if let Some(dir) = &self.plan.dir {
            let refused = self.refused.lock().expect("scanner refused poisoned");
            for (name, reason) in refused.iter() {
                if !by_name.contains_key(name) {
                    let path = dir.join(format!("{name}.yaml"));
                    let entry =
                        broken_entry(name.clone(), &path, self.plan.dir_source, reason.clone());
                    by_name.insert(name.clone(), entry);
                }
            }
        }
        self.cache
            .lock()
            .expect("scanner cache poisoned")
            .retain(|p, _| seen_paths.contains(p));
        result.entries = by_name
            .into_values()
            .filter(|e| config.cluster_selected(&e.name))
            .collect();
        result
    }

    /// Entries for one file: named after the file when it has one context
    /// (`file_name`), else one per context.
    fn entries_for(
        &self,
        path: &Path,
        file_name: Option<&str>,
        source: EntrySource,
        trust: &Trust,
        reread: bool,
    ) -> Vec<ClusterEntry> {
        let loaded = self.load(path, reread).and_then(|f| {
            kubeconfig_trust::check_file(&f, trust)?;
            Ok(f)
        });
        let file = match loaded {
            Ok(f) => f,
            Err(e) => {
                let name = file_name
                    .map(str::to_string)
                    .unwrap_or_else(|| file_stem(path));
                return vec![broken_entry(name, path, source, e.to_string())];
            }
        };
        let contexts = file.context_names();
        let single = contexts.len() == 1;
        contexts
            .into_iter()
            .map(|context| {
                let name = match (single, file_name) {
                    (true, Some(stem)) => stem.to_string(),
                    _ => context.clone(),
                };
                let summarized = file.summarize(&context).and_then(|summary| {
                    kubeconfig_trust::check_file_context(&file, trust, &context)?;
                    Ok(summary)
                });
                match summarized {
                    Ok(summary) => ClusterEntry {
                        name,
                        source,
                        path: path.to_path_buf(),
                        hash: hash_bytes(format!("{}\0{context}", file.hash).as_bytes()),
                        context,
                        server: summary.server,
                        modified: file.modified,
                        file: Some(file.clone()),
                        error: None,
                        auth: summary.auth,
                        token_expiry: summary.token_expiry,
                        cert_expiry: summary.cert_expiry,
                    },
                    Err(e) => broken_entry(name, path, source, e.to_string()),
                }
            })
            .collect()
    }

    fn load(
        &self,
        path: &Path,
        reread: bool,
    ) -> Result<Arc<KubeconfigFile>, kubeconfig::KubeconfigError> {
        if !reread {
            let cached = self
                .cache
                .lock()
                .expect("scanner cache poisoned")
                .get(path)
                .cloned();
            if let (Some(cached), Ok(meta)) = (cached, std::fs::metadata(path))
                && meta.modified().ok() == Some(cached.modified)
                && meta.len() == cached.len
                && meta.uid() == cached.uid
                && meta.mode() == cached.mode
            {
                return Ok(cached);
            }
        }
        let file = Arc::new(kubeconfig::read(path)?);
        self.cache
            .lock()
            .expect("scanner cache poisoned")
            .insert(path.to_path_buf(), file.clone());
        Ok(file)
    }
}

fn broken_entry(name: String, path: &Path, source: EntrySource, error: String) -> ClusterEntry {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    ClusterEntry {
        name,
        source,
        path: path.to_path_buf(),
        context: String::new(),
        server: String::new(),
        modified,
        hash: hash_bytes(error.as_bytes()),
        file: None,
        error: Some(error),
        auth: "none",
        token_expiry: None,
        cert_expiry: None,
    }
}

fn add_entries(
    by_name: &mut BTreeMap<String, ClusterEntry>,
    entries: Vec<ClusterEntry>,
    problems: &mut Vec<String>,
) {
    for entry in entries {
        if let Some(existing) = by_name.get(&entry.name) {
            problems.push(format!(
                "cluster {:?} is defined by {} and again by {}; keeping the first (rename one of the files or contexts)",
                entry.name,
                existing.path.display(),
                entry.path.display()
            ));
            continue;
        }
        by_name.insert(entry.name.clone(), entry);
    }
}

/// Kubeconfig candidates in `dir`: regular, non-hidden files with a known
/// extension or none, sorted.
pub fn kubeconfig_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    list_dir(dir)
}

fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".tmp") {
            continue;
        }
        let path = item.path();
        if !std::fs::metadata(&path)
            .map(|m| m.is_file())
            .unwrap_or(false)
        {
            continue;
        }
        let ext_ok = match path.extension().and_then(|e| e.to_str()) {
            None => true,
            Some(ext) => EXTENSIONS.contains(&ext),
        };
        if ext_ok {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn kubeconfig(contexts: &[&str]) -> String {
        let mut s = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
        for (i, c) in contexts.iter().enumerate() {
            s += &format!(
                "- name: {c}\n  cluster: {{server: \"https://127.0.0.1:{}\"}}\n",
                1000 + i
            );
        }
        s += "contexts:\n";
        for c in contexts {
            s += &format!("- name: {c}\n  context: {{cluster: {c}}}\n");
        }
        s
    }

    fn config(dir: &Path, extra: &str) -> Config {
        let text = format!("kubeconfig_dir = {:?}\n{extra}", dir.to_str().unwrap());
        let (c, problems) = Config::from_toml_str(&text, &Overrides::default(), |_| None);
        assert!(problems.is_empty(), "{problems:?}");
        c
    }

    #[test]
    fn one_cluster_per_file_or_per_context_and_broken_files_stay_visible() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c1-sv5.yaml"), kubeconfig(&["whatever"])).unwrap();
        std::fs::write(dir.path().join("multi.yaml"), kubeconfig(&["m1", "m2"])).unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "clusters: [[[").unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), kubeconfig(&["h"])).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hi").unwrap();
        let c = config(dir.path(), "");
        let scanner = Scanner::new(ScanPlan::from_config(&c));
        let r = scanner.scan(&c, false);
        let names: Vec<_> = r.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["broken", "c1-sv5", "m1", "m2"]);
        let broken = &r.entries[0];
        assert!(broken.error.as_ref().unwrap().contains("broken.yaml"));
        assert_eq!(r.entries[1].server, "https://127.0.0.1:1000");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn filters_apply_and_unchanged_files_are_not_reparsed() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["c1-a", "c1-b", "c2-a"] {
            std::fs::write(dir.path().join(format!("{n}.yaml")), kubeconfig(&[n])).unwrap();
        }
        let c = config(
            dir.path(),
            "[nsk]\ncluster_pattern = \"^c1-\"\nexclude_clusters = [\"c1-b\"]\n",
        );
        let scanner = Scanner::new(ScanPlan::from_config(&c));
        let first = scanner.scan(&c, false);
        assert_eq!(
            first.entries.iter().map(|e| &e.name).collect::<Vec<_>>(),
            ["c1-a"]
        );
        let again = scanner.scan(&c, false);
        assert!(Arc::ptr_eq(
            first.entries[0].file.as_ref().unwrap(),
            again.entries[0].file.as_ref().unwrap()
        ));
        let forced = scanner.scan(&c, true);
        assert!(!Arc::ptr_eq(
            first.entries[0].file.as_ref().unwrap(),
            forced.entries[0].file.as_ref().unwrap()
        ));
        assert_eq!(first.entries[0].hash, forced.entries[0].hash);
    }

    #[test]
    fn refused_files_are_unusable_entries_naming_why_and_the_others_stay() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.yaml"), kubeconfig(&["good"])).unwrap();
        let shared = dir.path().join("shared.yaml");
        std::fs::write(&shared, kubeconfig(&["shared"])).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o664)).unwrap();
        let exec = kubeconfig(&["plug"]).replace(
            "context: {cluster: plug}",
            "context: {cluster: plug, user: u}",
        ) + "users:\n- name: u\n  user: {exec: {command: /bin/true}}\n";
        std::fs::write(dir.path().join("plug.yaml"), exec).unwrap();
        let c = config(dir.path(), "");
        let scanner = Scanner::new(ScanPlan::from_config(&c));
        let r = scanner.scan(&c, false);
        let by: BTreeMap<_, _> = r.entries.iter().map(|e| (e.name.as_str(), e)).collect();
        assert!(by["good"].error.is_none());
        let e = by["shared"].error.as_deref().unwrap();
        assert!(e.contains("chmod go-w") && e.contains("0664"), "{e}");
        let e = by["plug"].error.as_deref().unwrap();
        assert!(
            e.contains("users[0].user.exec") && e.contains("allow_exec_plugins"),
            "{e}"
        );
        // After `chmod go-w` (same mtime and size) the file is used again.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = scanner.scan(&c, false);
        assert!(
            r.entries
                .iter()
                .all(|e| e.name != "shared" || e.error.is_none())
        );
        // The opt-in lets the exec kubeconfig through to the pool.
        let c = config(dir.path(), "[safety]\nallow_exec_plugins = true\n");
        let r = Scanner::new(ScanPlan::from_config(&c)).scan(&c, false);
        assert!(
            r.entries.iter().all(|e| e.error.is_none()),
            "{:?}",
            r.entries
        );
    }

    #[test]
    fn a_refused_fetch_without_a_file_still_shows() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            dir.path(),
            "[nsk]\nsource = \"nsk\"\nrancher_url = \"https://rancher.example.com\"\n",
        );
        let scanner = Scanner::new(ScanPlan::from_config(&c));
        scanner.set_refused(
            "c1",
            "the kubeconfig fetched for c1: `users[0].user.exec` is refused".into(),
        );
        let r = scanner.scan(&c, false);
        assert_eq!(r.entries.len(), 1);
        assert!(
            r.entries[0]
                .error
                .as_deref()
                .unwrap()
                .contains("users[0].user.exec")
        );
        scanner.retain_refused(|n| n != "c1");
        assert!(scanner.scan(&c, false).entries.is_empty());
    }

    #[test]
    fn missing_dir_is_a_problem_not_a_crash() {
        let c = config(Path::new("/nonexistent/nskd-test"), "");
        let r = Scanner::new(ScanPlan::from_config(&c)).scan(&c, false);
        assert!(r.entries.is_empty());
        assert!(
            r.problems[0].contains("/nonexistent/nskd-test"),
            "{:?}",
            r.problems
        );
    }
}
