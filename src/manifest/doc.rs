//! The parsed TOML document kept beside the typed manifest, to find the span
//! of any key or value by its path when a check fails after deserialization.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ManifestError;

/// One step of a path into the document.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

pub struct Doc<'a> {
    pub path: &'a Path,
    pub src: &'a str,
    root: Spanned<DeValue<'a>>,
}

impl<'a> Doc<'a> {
    pub fn parse(path: &'a Path, src: &'a str) -> Result<Doc<'a>, ManifestError> {
        let table = DeTable::parse(src).map_err(|e| toml_error(path, src, &e))?;
        let span = table.span();
        let root = Spanned::new(span, DeValue::Table(table.into_inner()));
        Ok(Doc { path, src, root })
    }

    /// The value at `path`, if present.
    pub fn get(&self, path: &[Seg]) -> Option<&Spanned<DeValue<'a>>> {
        let mut node = &self.root;
        for seg in path {
            node = match seg {
                Seg::Key(k) => node.get_ref().get(*k)?,
                Seg::Index(i) => node.get_ref().get(*i)?,
            };
        }
        Some(node)
    }

    /// The span of the deepest value along `path` that exists: a missing key
    /// is reported at the table that should have held it.
    pub fn span(&self, path: &[Seg]) -> Range<usize> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.get(&path[..n]).map(|v| v.span()))
            .unwrap_or(0..0)
    }

    pub fn error(&self, path: &[Seg], message: impl Into<String>) -> ManifestError {
        ManifestError::at(self.path, self.src, self.span(path), message)
    }

    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ManifestError {
        ManifestError::at(self.path, self.src, span, message)
    }
}

/// A toml error, with its span when it has one.
pub fn toml_error(path: &Path, src: &str, e: &toml::de::Error) -> ManifestError {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => ManifestError::at(path, src, span, message),
        None => ManifestError::whole(path, message),
    }
}
