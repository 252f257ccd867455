//! `trackbridge plugin new`: a plugin crate that builds on its own, outside
//! any workspace, and passes `plugin check --conformance` and its own tests
//! as generated.
//!
//! The templates are plain files with `{{placeholders}}` (in
//! `cli/scaffold/`); a substitution of five known names needs no template
//! engine.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use trackbridge_host::plugins::describe_check;

const CARGO_TOML: &str = include_str!("scaffold/Cargo.toml.tmpl");
const README: &str = include_str!("scaffold/README.md.tmpl");
const GITIGNORE: &str = include_str!("scaffold/gitignore.tmpl");
const CARGO_CONFIG: &str = include_str!("scaffold/cargo-config.toml.tmpl");
const PROVIDER_LIB: &str = include_str!("scaffold/provider.rs.tmpl");
const NOTIFIER_LIB: &str = include_str!("scaffold/notifier.rs.tmpl");
const PROVIDER_TEST: &str = include_str!("scaffold/provider_test.rs.tmpl");
const NOTIFIER_TEST: &str = include_str!("scaffold/notifier_test.rs.tmpl");

/// The guest SDK generated plugins use: the one targeting the newest
/// contract (its version follows the contract's, not the host's).
const SDK_VERSION: &str = "0.2.0";

/// What to generate.
pub struct Scaffold {
    pub name: String,
    pub notifier: bool,
    /// Where the crate goes; `./NAME` by default. Must not exist or be empty.
    pub dir: Option<PathBuf>,
    /// A trackbridge checkout to take the SDK and the harness from as path
    /// dependencies; by default the one this binary was built from, when it
    /// is still there, else the published crates.
    pub source: Option<PathBuf>,
}

/// Writes the crate and returns its directory.
pub fn generate(scaffold: &Scaffold) -> anyhow::Result<PathBuf> {
    describe_check::check_name(&scaffold.name)
        .map_err(|why| anyhow::anyhow!("{}", why.replace("`describe` name", "plugin name")))?;
    let dir = scaffold
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&scaffold.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let source = scaffold.source.clone().or_else(built_from);
    let (sdk, harness) = match &source {
        Some(root) => (
            path_dependency(root, "plugins/sdk", SDK_VERSION)?,
            path_dependency(root, "plugins/test-harness", env!("CARGO_PKG_VERSION"))?,
        ),
        None => (
            toml_string(SDK_VERSION),
            toml_string(env!("CARGO_PKG_VERSION")),
        ),
    };
    let values = Values {
        name: scaffold.name.clone(),
        lib: scaffold.name.replace('-', "_"),
        title: title_of(&scaffold.name),
        type_name: type_of(&scaffold.name),
        kind: if scaffold.notifier {
            "notifier"
        } else {
            "provider"
        },
        sdk,
        harness,
    };
    let (lib, test) = if scaffold.notifier {
        (NOTIFIER_LIB, NOTIFIER_TEST)
    } else {
        (PROVIDER_LIB, PROVIDER_TEST)
    };
    for (file, template) in [
        ("Cargo.toml", CARGO_TOML),
        ("README.md", README),
        (".gitignore", GITIGNORE),
        (".cargo/config.toml", CARGO_CONFIG),
        ("src/lib.rs", lib),
        ("tests/component.rs", test),
    ] {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, values.fill(template))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

struct Values {
    name: String,
    lib: String,
    title: String,
    type_name: String,
    kind: &'static str,
    sdk: String,
    harness: String,
}

impl Values {
    fn fill(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.name)
            .replace("{{lib}}", &self.lib)
            .replace("{{title}}", &self.title)
            .replace("{{Type}}", &self.type_name)
            .replace("{{kind}}", self.kind)
            .replace("{{sdk}}", &self.sdk)
            .replace("{{harness}}", &self.harness)
    }
}

/// The checkout this binary was built from, if it is still where it was.
fn built_from() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("plugins/sdk/Cargo.toml")
        .is_file()
        .then(|| root.to_path_buf())
}

fn path_dependency(root: &Path, crate_dir: &str, version: &str) -> anyhow::Result<String> {
    let path = root.join(crate_dir);
    let path = path.canonicalize().with_context(|| {
        format!(
            "{} is not a trackbridge checkout (no {crate_dir})",
            root.display()
        )
    })?;
    Ok(format!(
        "{{ path = {}, version = {} }}",
        toml_string(&path.to_string_lossy()),
        toml_string(version)
    ))
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `my-tracker` → `My Tracker`.
fn title_of(name: &str) -> String {
    name.split('-')
        .map(capitalized)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `my-tracker` → `MyTracker`.
fn type_of(name: &str) -> String {
    name.split('-').map(capitalized).collect()
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_titles_and_types() {
        assert_eq!(title_of("my-tracker2"), "My Tracker2");
        assert_eq!(type_of("my-tracker2"), "MyTracker2");
        assert_eq!(type_of("acme"), "Acme");
    }

    #[test]
    fn the_sdk_version_is_the_checkouts() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk/Cargo.toml");
        let manifest: toml::Table = std::fs::read_to_string(manifest).unwrap().parse().unwrap();
        assert_eq!(manifest["package"]["version"].as_str(), Some(SDK_VERSION));
    }

    /// Generated plugins are built as the built-in ones are (the initial
    /// memory that spares a call from growing it).
    #[test]
    fn generated_plugins_build_with_the_workspaces_wasm_flags() {
        let wasm_flags = |text: &str| {
            let table: toml::Table = text.parse().unwrap();
            table["target"]["wasm32-wasip2"]["rustflags"].clone()
        };
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cargo/config.toml");
        let flags = wasm_flags(CARGO_CONFIG);
        assert_eq!(
            flags,
            wasm_flags(&std::fs::read_to_string(workspace).unwrap())
        );
        assert!(flags.to_string().contains("--initial-memory="), "{flags}");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let values = Values {
            name: "acme".into(),
            lib: "acme".into(),
            title: "Acme".into(),
            type_name: "Acme".into(),
            kind: "provider",
            sdk: "\"0.1.0\"".into(),
            harness: "\"0.1.0\"".into(),
        };
        for template in [
            CARGO_TOML,
            README,
            GITIGNORE,
            CARGO_CONFIG,
            PROVIDER_LIB,
            NOTIFIER_LIB,
            PROVIDER_TEST,
            NOTIFIER_TEST,
        ] {
            let filled = values.fill(template);
            assert!(!filled.contains("{{"), "left unfilled: {filled}");
        }
    }

    #[test]
    fn a_bad_name_or_a_full_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("tb-scaffold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep"), "x").unwrap();
        let refused = |name: &str, dir: &Path| {
            generate(&Scaffold {
                name: name.into(),
                notifier: false,
                dir: Some(dir.to_path_buf()),
                source: None,
            })
            .unwrap_err()
            .to_string()
        };
        assert!(refused("Acme", &dir.join("new")).contains("plugin name"));
        assert!(refused("acme", &dir).contains("not empty"));
        assert_eq!(std::fs::read_to_string(dir.join("keep")).unwrap(), "x");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
