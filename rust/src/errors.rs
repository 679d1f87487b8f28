//! One home for every error the core can report. Each variant carries the file and, where it
//! applies, the record number, so the Python side can print one precise line.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The file cannot be opened or read (missing, permission, I/O failure).
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// The file is readable but its content is malformed at a given record (1-based).
    #[error("{path}: record {record}: {message}")]
    Format {
        path: PathBuf,
        record: u64,
        message: String,
    },
    /// The file is well formed but unusable as a whole (empty, unsorted, wrong references...).
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// A parameter is out of range.
    #[error("{0}")]
    Parameter(String),
}

impl CoreError {
    pub fn file(path: &Path, err: &std::io::Error) -> Self {
        let message = match err.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => err.to_string(),
        };
        CoreError::File {
            path: path.to_path_buf(),
            message,
        }
    }

    pub fn format(path: &Path, record: u64, message: impl Into<String>) -> Self {
        CoreError::Format {
            path: path.to_path_buf(),
            record,
            message: message.into(),
        }
    }

    pub fn input(path: &Path, message: impl Into<String>) -> Self {
        CoreError::Input {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// Record number for ordering errors found by parallel workers; `u64::MAX` when none.
    pub fn record(&self) -> u64 {
        match self {
            CoreError::Format { record, .. } => *record,
            _ => u64::MAX,
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
