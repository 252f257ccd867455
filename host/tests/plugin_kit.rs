//! The plugin kit as an author meets it: `trackbridge plugin new` writes a
//! crate outside the repository that builds for wasm32-wasip2 and passes
//! `plugin check` and the conformance checks unmodified; the built-in
//! plugins pass them too, and a plugin that traps on garbage does not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUILT_IN: &[&str] = &[
    "trackbridge_plugin_jira",
    "trackbridge_plugin_jira_server",
    "trackbridge_plugin_vsts",
    "trackbridge_plugin_discord",
];

fn trackbridge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trackbridge"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running trackbridge")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn plugins_dir(root: &Path) -> PathBuf {
    match std::env::var_os("TRACKBRIDGE_PLUGINS_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => dir.into(),
        None => xtask::build_plugins(root).expect("building the plugins"),
    }
}

/// Generates a crate in a directory with nothing beside it, builds its
/// component as an author would, and returns the `.wasm`.
fn generate_and_build(root: &Path, name: &str, notifier: bool) -> (tempfile::TempDir, PathBuf) {
    generate_edit_and_build(root, name, notifier, str::to_owned)
}

/// [`generate_and_build`], with `edit` applied to the generated `src/lib.rs`.
fn generate_edit_and_build(
    root: &Path,
    name: &str,
    notifier: bool,
    edit: impl Fn(&str) -> String,
) -> (tempfile::TempDir, PathBuf) {
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join(name);
    let mut args = vec!["plugin", "new", name, "--dir", dir.to_str().unwrap()];
    if notifier {
        args.push("--notifier");
    }
    let source = root.to_str().unwrap();
    args.extend(["--source", source]);
    let generated = trackbridge(&args);
    assert!(generated.status.success(), "{}", text(&generated));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[workspace]"), "{manifest}");
    assert!(
        manifest.contains(r#"crate-type = ["cdylib", "rlib"]"#),
        "{manifest}"
    );
    let lib = dir.join("src/lib.rs");
    let edited = edit(&std::fs::read_to_string(&lib).unwrap());
    std::fs::write(&lib, edited).unwrap();

    // The workspace's lock file pins the versions the plugins' build already
    // compiled, and its target directory holds them: the build then compiles
    // the generated crate alone, not the world. Neither changes what is
    // built: the crate resolves without the lock too.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = root.join("target/plugins");
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built));
    let wasm = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(wasm.is_file(), "no component at {}", wasm.display());
    (outside, wasm)
}

fn passes_check_and_conformance(wasm: &Path, name: &str) {
    let file = wasm.to_str().unwrap();
    let check = trackbridge(&["plugin", "check", file]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).starts_with(&format!("ok: {name} ")),
        "{}",
        text(&check)
    );

    let conformance = trackbridge(&["plugin", "check", "--conformance", file]);
    let out = text(&conformance);
    assert!(conformance.status.success(), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("conformance checks passed"), "{out}");
    assert!(
        !out.contains('\u{1b}'),
        "colour codes in piped output: {out:?}"
    );
}

#[test]
fn a_generated_provider_builds_outside_the_repository_and_conforms() {
    let root = xtask::workspace_root();
    let (outside, wasm) = generate_and_build(&root, "acme-tracker", false);
    passes_check_and_conformance(&wasm, "acme-tracker");

    // Its own tests pass as generated: the native unit tests, and the
    // component test that rebuilds the `.wasm` and runs it in the harness.
    // The workspace's target directory already holds the host the harness
    // links (a nested cargo may use it: the outer one holds no lock while
    // tests run).
    let tested = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(outside.path().join("acme-tracker"))
        .env("CARGO_TARGET_DIR", root.join("target"))
        .args(["test"])
        .output()
        .unwrap();
    let out = text(&tested);
    assert!(tested.status.success(), "{out}");
    assert!(
        out.contains("installed_it_verifies_handles_and_syncs_through_the_tracker ... ok"),
        "{out}"
    );
}

#[test]
fn a_generated_notifier_builds_outside_the_repository_and_conforms() {
    let root = xtask::workspace_root();
    let (_outside, wasm) = generate_and_build(&root, "acme-chat", true);
    passes_check_and_conformance(&wasm, "acme-chat");
}

#[test]
fn the_built_in_plugins_conform() {
    let dir = plugins_dir(&xtask::workspace_root());
    for plugin in BUILT_IN {
        let wasm = dir.join(format!("{plugin}.wasm"));
        let conformance =
            trackbridge(&["plugin", "check", "--conformance", wasm.to_str().unwrap()]);
        let out = text(&conformance);
        assert!(conformance.status.success(), "{plugin}: {out}");
        // Providers: describe twice, three verify cases, handle, build,
        // limits. The notifier has no webhooks to verify or handle.
        let rows = if plugin.ends_with("discord") { 4 } else { 8 };
        assert_eq!(
            out.lines().filter(|l| l.starts_with("pass  ")).count(),
            rows,
            "{plugin}: {out}"
        );
        assert!(
            out.contains(&format!("all {rows} conformance checks passed")),
            "{plugin}: {out}"
        );
    }
}

#[test]
fn a_plugin_that_traps_on_garbage_fails_conformance_and_says_where() {
    let root = xtask::workspace_root();
    let edit = |lib: &str| {
        // What a careless author might write: trusting the body to be JSON.
        lib.replacen(
            "let external_id = request.route_param",
            "let _: serde_json::Value = serde_json::from_slice(&request.body).expect(\"a JSON body\");\n        let external_id = request.route_param",
            1,
        )
    };
    let (_outside, wasm) = generate_edit_and_build(&root, "acme-careless", false, edit);
    let conformance = trackbridge(&["plugin", "check", "--conformance", wasm.to_str().unwrap()]);
    let out = text(&conformance);
    assert!(!conformance.status.success(), "{out}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failed
            .iter()
            .any(|l| l.contains("verify-webhook rejects garbage") && l.contains("a JSON body")),
        "the failing row names the check and the guest's panic: {out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("pass") && l.contains("describe is valid")),
        "{out}"
    );
    assert!(out.contains("conformance checks failed"), "{out}");
}

#[test]
fn plugin_new_refuses_a_name_the_host_would_refuse() {
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join("x");
    let refused = trackbridge(&[
        "plugin",
        "new",
        "Acme_Tracker",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("plugin name"), "{}", text(&refused));
    assert!(!dir.exists(), "nothing is written for a refused name");
}
