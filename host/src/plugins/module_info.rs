//! What a loaded module is, beyond what it says of itself: shared by the
//! loader that finds it out and the plugins and registry that carry it, so
//! none of them imports another for it.

/// What a module is, beyond what it says of itself.
#[derive(Clone, Debug)]
pub struct ModuleInfo {
    pub sha256: String,
    pub size: u64,
    /// `trackbridge:plugin@<version>`.
    pub contract: String,
    /// Where it came from: a file, an upload, the database.
    pub origin: String,
    /// What the component imports from the host and exports to it, by name.
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}
