//! What `serve` prints once it is up: where it listens, where its database
//! and admin token are, and which plugins serve. Plain text, no colour
//! codes, one fact a line, so it reads the same in a terminal, a file or a
//! journal.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use trackbridge_host::plugins::swap::Serving;

pub struct Summary<'a> {
    pub version: &'a str,
    pub addr: SocketAddr,
    pub database_url: &'a str,
    /// Where the admin token comes from (never the token).
    pub admin_token: &'a str,
    /// How integration secrets are kept (never a key).
    pub secrets: &'a str,
    pub plugins_dir: &'a Path,
    pub plugins: &'a [Serving],
}

/// `path` made absolute against the working directory, for display.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The database, for a person: a SQLite URL as its absolute file, any other
/// URL without its password.
pub fn describe_database(url: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let file = rest.split('?').next().unwrap_or(rest);
        if file.is_empty() || file == ":memory:" {
            return "SQLite, in memory (nothing is kept)".into();
        }
        return format!("SQLite file {}", absolute(Path::new(file)).display());
    }
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(a database URL that does not parse)".into(),
    }
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "trackbridge {} is serving", self.version)?;
        writeln!(f, "  listening on  http://{}", self.addr)?;
        writeln!(
            f,
            "  database      {}",
            describe_database(self.database_url)
        )?;
        writeln!(f, "  admin token   {}", self.admin_token)?;
        writeln!(f, "  secrets       {}", self.secrets)?;
        writeln!(
            f,
            "  plugins       {} from {}",
            self.plugins.len(),
            absolute(self.plugins_dir).display()
        )?;
        let width = self.plugins.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let vwidth = self
            .plugins
            .iter()
            .map(|p| p.version.len())
            .max()
            .unwrap_or(0);
        for p in self.plugins {
            writeln!(
                f,
                "    {:width$}  {:vwidth$}  {}  {}",
                p.name, p.version, p.contract, p.world
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let shown = describe_database("postgres://tb:hunter2@db.internal/tb");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
    }

    #[test]
    fn a_sqlite_url_shows_its_file() {
        let shown = describe_database("sqlite:///var/lib/tb/trackbridge.db?mode=rwc");
        assert_eq!(shown, "SQLite file /var/lib/tb/trackbridge.db");
        let relative = describe_database("sqlite://trackbridge.db?mode=rwc");
        assert!(relative.starts_with("SQLite file /"), "{relative}");
        assert!(relative.ends_with("/trackbridge.db"), "{relative}");
    }
}
