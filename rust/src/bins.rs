//! Writes bins as gzip FASTA: one streaming pass over the contigs per group of bins, each record
//! copied to the file of the bin it belongs to. Files appear under their final names only when
//! every record has been written.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::errors::{CoreError, CoreResult};
use crate::seqio::SequenceReader;

/// At most this many output files are open at once; more bins take more passes over the input.
const MAX_OPEN_FILES: usize = 512;
const LINE_WIDTH: usize = 60;

fn temporary_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

fn write_record(out: &mut impl Write, name: &[u8], sequence: &[u8]) -> std::io::Result<()> {
    out.write_all(b">")?;
    out.write_all(name)?;
    out.write_all(b"\n")?;
    for line in sequence.chunks(LINE_WIDTH) {
        out.write_all(line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Copies each contig named in `assignment` (name -> index into `outputs`) to its output file.
/// Returns the number of contigs written to each output. Contigs not named are not written.
pub fn write_bins(
    contigs: &Path,
    assignment: &HashMap<Vec<u8>, usize>,
    outputs: &[PathBuf],
) -> CoreResult<Vec<u64>> {
    let mut written = vec![0u64; outputs.len()];
    let result = (|| {
        for first in (0..outputs.len().max(1)).step_by(MAX_OPEN_FILES) {
            let last = (first + MAX_OPEN_FILES).min(outputs.len());
            write_group(contigs, assignment, outputs, first..last, &mut written)?;
        }
        Ok(())
    })();
    if let Err(error) = result {
        for path in outputs {
            let _ = std::fs::remove_file(temporary_name(path));
        }
        return Err(error);
    }
    for path in outputs {
        std::fs::rename(temporary_name(path), path).map_err(|e| CoreError::file(path, &e))?;
    }
    let missing = assignment.len() as u64 - written.iter().sum::<u64>();
    if missing > 0 {
        return Err(CoreError::input(
            contigs,
            format!("{missing} contigs assigned to bins are not in this file"),
        ));
    }
    Ok(written)
}

fn write_group(
    contigs: &Path,
    assignment: &HashMap<Vec<u8>, usize>,
    outputs: &[PathBuf],
    group: std::ops::Range<usize>,
    written: &mut [u64],
) -> CoreResult<()> {
    let mut writers: Vec<GzEncoder<BufWriter<File>>> = Vec::with_capacity(group.len());
    for path in &outputs[group.clone()] {
        let file = File::create(temporary_name(path)).map_err(|e| CoreError::file(path, &e))?;
        writers.push(GzEncoder::new(
            BufWriter::with_capacity(1 << 16, file),
            Compression::new(5),
        ));
    }
    let mut reader = SequenceReader::open(contigs, 0)?;
    while let Some(batch) = reader.next_batch()? {
        for i in 0..batch.len() {
            let Some(&output) = assignment.get(batch.name(i)) else {
                continue;
            };
            if !group.contains(&output) {
                continue;
            }
            write_record(
                &mut writers[output - group.start],
                batch.name(i),
                batch.sequence(i),
            )
            .map_err(|e| CoreError::file(&outputs[output], &e))?;
            written[output] += 1;
        }
    }
    for (writer, path) in writers.into_iter().zip(&outputs[group]) {
        writer
            .finish()
            .and_then(|mut inner| inner.flush())
            .map_err(|e| CoreError::file(path, &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(path: &Path) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn records_go_to_their_bins() {
        let dir = std::env::temp_dir().join(format!("vaebin-bins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let contigs = dir.join("c.fa");
        let long = "A".repeat(61);
        std::fs::write(&contigs, format!(">x d\nAC\nGT\n>y\n{long}\n>z\nTT\n")).unwrap();
        let outputs = vec![dir.join("b.1.fna.gz"), dir.join("b.2.fna.gz")];
        let assignment: HashMap<Vec<u8>, usize> =
            [(b"x".to_vec(), 1), (b"y".to_vec(), 0), (b"z".to_vec(), 1)].into();
        let counts = write_bins(&contigs, &assignment, &outputs).unwrap();
        assert_eq!(counts, vec![1, 2]);
        assert_eq!(gunzip(&outputs[0]), format!(">y\n{}\nA\n", "A".repeat(60)));
        assert_eq!(gunzip(&outputs[1]), ">x\nACGT\n>z\nTT\n");
        let stray: HashMap<Vec<u8>, usize> = [(b"w".to_vec(), 0)].into();
        let error = write_bins(&contigs, &stray, &outputs[..1]).unwrap_err();
        assert!(error
            .to_string()
            .ends_with("1 contigs assigned to bins are not in this file"));
    }
}
