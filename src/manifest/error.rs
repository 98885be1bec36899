//! A manifest error that names the file, line and column, and shows the line.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    pub path: PathBuf,
    /// 1-based line and column (in characters) of the offending text.
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The source line, for display.
    pub source_line: String,
}

impl ManifestError {
    pub fn at(path: &Path, src: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let offset = span.start.min(src.len());
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = src[line_start..offset].chars().count() + 1;
        let source_line = src[line_start..]
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        ManifestError {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
            source_line,
        }
    }

    /// An error about the file as a whole (unreadable, not UTF-8, ...).
    pub fn whole(path: &Path, message: impl Into<String>) -> Self {
        ManifestError {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: message.into(),
            source_line: String::new(),
        }
    }

    /// `file:line:column: message`, the first line of the display.
    pub fn headline(&self) -> String {
        format!(
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.headline())?;
        if !self.source_line.is_empty() {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            write!(
                f,
                "\n{pad} |\n{number} | {}\n{pad} | {}^",
                self.source_line,
                " ".repeat(self.column - 1)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}
