//! Where `serve` finds its plugins when `--plugins-dir` is not given: beside
//! the binary first (a release archive holds them in `plugins/`), then the
//! build output of the workspace the binary was built in.

use std::fmt;
use std::path::{Path, PathBuf};

/// The build output of `cargo xtask plugins`, relative to a workspace root.
const WORKSPACE_PLUGINS: &str = "target/plugins/wasm32-wasip2/release";

/// The places looked in, in order, for the binary at `exe`.
pub fn candidates(exe: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = exe.parent() {
        out.push(dir.join("plugins"));
        // `target/<profile>/trackbridge` in a checkout.
        if let Some(target) = dir.parent() {
            out.push(target.join("plugins/wasm32-wasip2/release"));
        }
    }
    // The checkout this binary was compiled in, wherever it was copied since.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(WORKSPACE_PLUGINS);
    out.push(workspace);
    let mut unique = Vec::new();
    for path in out {
        let path = normalize(&path);
        if !unique.contains(&path) {
            unique.push(path);
        }
    }
    unique
}

/// `a/b/../c` → `a/c`, without touching the file system (the path may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// No candidate holds a plugin.
#[derive(Debug)]
pub struct NotFound {
    /// Each place looked in and what was found there.
    pub looked: Vec<(PathBuf, &'static str)>,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "no plugins found; looked in, in this order:")?;
        for (path, what) in &self.looked {
            writeln!(f, "  {}: {what}", path.display())?;
        }
        write!(
            f,
            "Pass --plugins-dir DIR (or TRACKBRIDGE_PLUGINS_DIR), unpack a release archive \
             (its plugins/ sits beside the binary), or build them in a checkout of trackbridge \
             with `cargo xtask plugins`."
        )
    }
}

impl std::error::Error for NotFound {}

/// Whether `dir` holds at least one `.wasm` file, and if not, why.
fn holds_plugins(dir: &Path) -> Result<(), &'static str> {
    let entries = std::fs::read_dir(dir).map_err(|_| "does not exist")?;
    let any = entries
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "wasm"));
    if any {
        Ok(())
    } else {
        Err("holds no .wasm file")
    }
}

/// The first candidate for `exe` that holds plugins.
pub fn find(exe: &Path) -> Result<PathBuf, NotFound> {
    first_holding_plugins(candidates(exe))
}

fn first_holding_plugins(candidates: Vec<PathBuf>) -> Result<PathBuf, NotFound> {
    let mut looked = Vec::new();
    for dir in candidates {
        match holds_plugins(&dir) {
            Ok(()) => return Ok(dir),
            Err(why) => looked.push((dir, why)),
        }
    }
    Err(NotFound { looked })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_the_binary_comes_first_then_the_build_output() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("target/debug/trackbridge");
        let c = candidates(&exe);
        assert_eq!(c[0], dir.path().join("target/debug/plugins"));
        assert_eq!(
            c[1],
            dir.path().join("target/plugins/wasm32-wasip2/release")
        );
        assert!(c[2].ends_with(WORKSPACE_PLUGINS), "{c:?}");
    }

    #[test]
    fn an_empty_or_missing_directory_is_passed_over_and_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, missing, full) = (
            dir.path().join("empty"),
            dir.path().join("missing"),
            dir.path().join("full"),
        );
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::create_dir_all(&full).unwrap();
        let err = first_holding_plugins(vec![empty.clone(), missing.clone()]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("{}: holds no .wasm file", empty.display())),
            "{text}"
        );
        assert!(
            text.contains(&format!("{}: does not exist", missing.display())),
            "{text}"
        );
        assert!(text.contains("cargo xtask plugins"), "{text}");
        assert!(text.contains("--plugins-dir"), "{text}");
        std::fs::write(full.join("a.wasm"), b"").unwrap();
        let found = first_holding_plugins(vec![empty, missing, full.clone()]).unwrap();
        assert_eq!(found, full);
    }
}
