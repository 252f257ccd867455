//! The release archive an operator installs: `trackbridge-<version>-<target>.tar.gz`,
//! one directory holding the binary, the built-in plugins in `plugins/` (where
//! the binary looks first), an example configuration with every option at its
//! default, a systemd unit and the installation notes.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::{PLUGINS, plugin_file_name};

/// The files of the repository's `packaging/` folder that go into the archive.
pub const PACKAGING_FILES: &[&str] = &[
    "trackbridge.example.toml",
    "trackbridge.service",
    "INSTALL.md",
];

/// What goes into an archive.
pub struct Release<'a> {
    /// The `trackbridge` binary.
    pub binary: &'a Path,
    /// Where the built plugins are (`cargo xtask plugins`).
    pub plugins_dir: &'a Path,
    /// The repository's `packaging/` folder.
    pub packaging_dir: &'a Path,
    pub version: &'a str,
    pub target: &'a str,
}

impl Release<'_> {
    /// `trackbridge-<version>-<target>`: the archive's name and its one directory.
    pub fn name(&self) -> String {
        format!("trackbridge-{}-{}", self.version, self.target)
    }
}

/// The name a plugin crate's module has in the archive: `jira.wasm` for
/// `trackbridge-plugin-jira` (the host goes by what `describe` says, not by
/// the file name).
pub fn archived_plugin_name(krate: &str) -> String {
    format!(
        "{}.wasm",
        krate.strip_prefix("trackbridge-plugin-").unwrap_or(krate)
    )
}

/// Write `<out_dir>/<name>.tar.gz`; returns its path.
pub fn pack(release: &Release<'_>, out_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let name = release.name();
    let path = out_dir.join(format!("{name}.tar.gz"));
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    // Modes are set here, not taken from the build: the binary must be
    // executable and nothing may be writable by others, whatever the umask.
    let mut add = |from: &Path, to: String, mode: u32| -> anyhow::Result<()> {
        let mut source = File::open(from).with_context(|| format!("reading {}", from.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(source.metadata()?.len());
        header.set_mode(mode);
        header.set_mtime(
            source
                .metadata()?
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/{to}"), &mut source)
            .with_context(|| format!("adding {to}"))?;
        Ok(())
    };
    add(release.binary, "trackbridge".into(), 0o755)?;
    for krate in PLUGINS {
        let built = release.plugins_dir.join(plugin_file_name(krate));
        if !built.is_file() {
            bail!(
                "{} is missing: build the plugins first (cargo xtask plugins)",
                built.display()
            );
        }
        add(
            &built,
            format!("plugins/{}", archived_plugin_name(krate)),
            0o644,
        )?;
    }
    for file in PACKAGING_FILES {
        add(&release.packaging_dir.join(file), (*file).to_owned(), 0o644)?;
    }
    tar.into_inner()?.finish()?;
    Ok(path)
}

/// Unpack `archive` into `dir` (the archive's directory is created inside it).
pub fn unpack(archive: &Path, dir: &Path) -> anyhow::Result<()> {
    let file = File::open(archive).with_context(|| format!("reading {}", archive.display()))?;
    tar::Archive::new(GzDecoder::new(file))
        .unpack(dir)
        .with_context(|| format!("unpacking {} into {}", archive.display(), dir.display()))
}
