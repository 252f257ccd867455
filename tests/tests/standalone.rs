//! The repository stands on its own: a clone into a directory with nothing
//! beside it holds everything its files refer to. No tracked file names the
//! research folder that sat beside the first checkouts, a machine's absolute
//! path, or a relative path that climbs out of the repository; every fixture a
//! test reads is tracked.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use trackbridge_e2e::plugins::workspace_root;

/// A fresh clone of this repository's HEAD, alone in a temporary directory.
fn clone() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let repo = dir.path().join("repo");
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(workspace_root())
        .arg(&repo)
        .status()
        .expect("running git clone");
    assert!(status.success(), "git clone failed: {status}");
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["repo"], "the clone has nothing beside it");
    (dir, repo)
}

fn tracked_files(repo: &Path) -> Vec<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["ls-files", "-z"])
        .output()
        .expect("git ls-files");
    assert!(out.status.success());
    out.stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .collect()
}

/// `a/b/../c` → `a/c`; `None` when it climbs above its start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// Every `../…` path written in `text`.
fn relative_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("../") {
        let start = i + at;
        // Only the first `../` of a run starts a path (not `x/../`).
        let preceded = start > 0 && (bytes[start - 1] == b'/' || bytes[start - 1] == b'.');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric() || b"._-/{}".contains(&bytes[end]))
        {
            end += 1;
        }
        if !preceded {
            found.push(text[start..end].to_owned());
        }
        i = end.max(start + 3);
    }
    found
}

/// The nearest directory at or above `file`'s that holds a `Cargo.toml`:
/// where a path written in a crate's code may be relative to.
fn crate_root(repo: &Path, file: &Path) -> Option<PathBuf> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if repo.join(d).join("Cargo.toml").is_file() {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

/// Why `reference`, written in `file`, points outside the repository (or
/// `None` when it does not). It may be relative to the file's directory (an
/// `include_str!`, a Markdown link) or to its crate's root (a manifest
/// path, `env!("CARGO_MANIFEST_DIR")`); it is fine when one of those
/// readings stays inside and names something the clone has (or build
/// output), and wrong when a reading escapes and none stays on something real.
fn escapes(repo: &Path, file: &Path, reference: &str) -> Option<String> {
    let mut bases = vec![file.parent().unwrap_or(Path::new("")).to_path_buf()];
    if let Some(root) = crate_root(repo, file) {
        bases.push(root);
    }
    let mut escaped = false;
    for base in &bases {
        match normalize(&base.join(reference)) {
            None => escaped = true,
            Some(inside) => {
                if inside.starts_with("target") || repo.join(&inside).exists() {
                    return None;
                }
            }
        }
    }
    escaped.then(|| {
        format!(
            "{}: `{reference}` leads outside the repository",
            file.display()
        )
    })
}

fn spelt(parts: &[&str]) -> String {
    parts.concat()
}

#[test]
fn a_clone_refers_to_nothing_outside_itself() {
    let (_dir, repo) = clone();
    let files = tracked_files(&repo);
    assert!(
        files.len() > 50,
        "the clone holds the repository: {}",
        files.len()
    );
    // Spelt in two halves so that this file does not name them itself.
    // Spelt in parts, joined at run time, so that this file does not name them.
    let research = [
        spelt(&["../", "shared"]),
        spelt(&["shared", "/specs"]),
        spelt(&["shared", "/fixtures"]),
    ];
    let absolute = spelt(&["/work", "/"]);
    let mut problems = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(repo.join(file)) else {
            continue; // not text
        };
        if research.iter().any(|r| text.contains(r)) {
            problems.push(format!(
                "{}: names the research folder beside the checkout",
                file.display()
            ));
        }
        if text.contains(&absolute) {
            problems.push(format!(
                "{}: names an absolute path of a machine",
                file.display()
            ));
        }
        for reference in relative_paths(&text) {
            problems.extend(escapes(&repo, file, &reference));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_fixture_a_test_reads_is_in_the_clone() {
    let (_dir, repo) = clone();
    let files = tracked_files(&repo);
    // Every string literal ending in .json, in a file that reads fixtures: a call's
    // argument, a constant, or a `format!` pattern whose `{…}` parts match anything.
    let mut read = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let text = std::fs::read_to_string(repo.join(file)).unwrap();
        if !text.contains("fixture(") && !text.contains("fixture_bytes(") {
            continue;
        }
        for literal in text.split('"').skip(1).step_by(2) {
            let path_like = literal.ends_with(".json")
                && !literal.starts_with('/')
                && !literal.contains(char::is_whitespace);
            if path_like {
                read.push(literal.to_owned());
            }
        }
    }
    assert!(read.len() >= 10, "the tests read fixtures: {read:?}");
    // A path is relative to `tests/fixtures`; a bare name (a plugin's unit
    // tests read one folder of it) must be one of its files.
    let fixtures = Path::new("tests/fixtures");
    // A literal that climbs to the repository's `tests/fixtures/` (an
    // `include_bytes!` from a plugin's source) names the rest of its path.
    let read: Vec<String> = read
        .into_iter()
        .map(|f| match f.find("tests/fixtures/") {
            Some(at) => f[at + "tests/fixtures/".len()..].to_owned(),
            None => f,
        })
        .collect();
    let missing: Vec<_> = read
        .iter()
        .filter(|f| {
            !files.iter().any(|t| {
                let Ok(inside) = t.strip_prefix(fixtures) else {
                    return false;
                };
                let inside = inside.to_string_lossy();
                if f.contains('/') {
                    matches_pattern(&inside, f)
                } else {
                    t.file_name()
                        .is_some_and(|n| matches_pattern(&n.to_string_lossy(), f))
                }
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "read by tests, not tracked: {missing:?}"
    );
    // Every fixture file says where it comes from.
    let sources = std::fs::read_to_string(repo.join("tests/fixtures/SOURCES.md")).unwrap();
    for file in files
        .iter()
        .filter(|f| f.starts_with(fixtures) && f.extension().is_some_and(|e| e == "json"))
    {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            sources.contains(&format!("| {name} |")),
            "{} has no row in tests/fixtures/SOURCES.md",
            file.display()
        );
    }
}

/// Whether `name` matches `pattern`, where each `{…}` of the pattern stands
/// for any text.
fn matches_pattern(name: &str, pattern: &str) -> bool {
    let mut parts = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        parts.push(&rest[..open]);
        rest = rest[open..]
            .find('}')
            .map_or("", |close| &rest[open + close + 1..]);
    }
    parts.push(rest);
    let mut at = 0;
    for (i, part) in parts.iter().enumerate() {
        let found = if i == 0 {
            name.starts_with(part).then_some(0)
        } else if i == parts.len() - 1 {
            (name.len() >= at + part.len() && name.ends_with(part)).then(|| name.len() - part.len())
        } else {
            name[at..].find(part).map(|p| p + at)
        };
        match found {
            Some(p) => at = p + part.len(),
            None => return false,
        }
    }
    parts.len() > 1 || name == pattern
}

#[test]
fn the_checks_catch_what_they_look_for() {
    let repo = workspace_root();
    let file = Path::new("tests/src/fixtures.rs");
    assert!(escapes(&repo, file, &spelt(&["../../", "shared", "/fixtures"])).is_some());
    assert!(
        escapes(
            &repo,
            file,
            "../../plugins/jira-server/testdata/oauth-test-cases-key.pem"
        )
        .is_none()
    );
    assert!(
        escapes(
            &repo,
            Path::new("README.md"),
            &spelt(&["../", "shared", "/specs/x.md"])
        )
        .is_some()
    );
    assert!(escapes(&repo, Path::new("host/Cargo.toml"), "../xtask").is_none());
    assert!(matches_pattern(
        "create_401_response.json",
        "create_{status}_response.json"
    ));
    assert!(!matches_pattern(
        "create_401_response.json",
        "delete_{status}_response.json"
    ));
    assert!(matches_pattern("a.json", "a.json"));
    assert!(!matches_pattern("b.json", "a.json"));
    let text = spelt(&["a ../", "../b/c.json and x/../y"]);
    assert_eq!(relative_paths(&text), [spelt(&["../", "../b/c.json"])]);
}
