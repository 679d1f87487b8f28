//! Writes bins as gzip FASTA (contigs) or FASTA/FASTQ (reads): one streaming pass over the
//! input per group of bins, each record copied to the file of the bin it belongs to. Files
//! appear under their final names only when every record has been written.

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
    let mut writers = open_writers(&outputs[group.clone()], Compression::new(5))?;
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
    finish_writers(writers, &outputs[group])
}

/// Index in `outputs_of_records` that leaves a record out of every output.
pub const NO_OUTPUT: u32 = u32::MAX;

/// Copies reads to their bins' files: `outputs_of_records[f][r]` is the output of record `r`
/// (0-based, every record of the file counted) of `inputs[f]`, or `NO_OUTPUT`. FASTQ records
/// keep their qualities when `fastq` is set (every input must then be FASTQ); otherwise reads
/// are written as FASTA. Gzip level 1: read bins hold every base of the run, and level 1
/// compresses several times faster than 5 for a few percent more bytes. Returns the reads
/// written to each output.
pub fn write_read_bins(
    inputs: &[PathBuf],
    outputs_of_records: &[Vec<u32>],
    outputs: &[PathBuf],
    fastq: bool,
) -> CoreResult<Vec<u64>> {
    if inputs.len() != outputs_of_records.len() {
        return Err(CoreError::Parameter(
            "one list of outputs per input file is needed".to_string(),
        ));
    }
    let mut written = vec![0u64; outputs.len()];
    let result = (|| {
        for first in (0..outputs.len().max(1)).step_by(MAX_OPEN_FILES) {
            let last = (first + MAX_OPEN_FILES).min(outputs.len());
            let group = first..last;
            let mut writers = open_writers(&outputs[group.clone()], Compression::new(1))?;
            for (input, record_outputs) in inputs.iter().zip(outputs_of_records) {
                let mut reader = SequenceReader::open(input, 0)?.keep_quality();
                while let Some(batch) = reader.next_batch()? {
                    for i in 0..batch.len() {
                        let number = batch.record_numbers[i] as usize;
                        let Some(&output) = record_outputs.get(number - 1) else {
                            return Err(CoreError::input(
                                input,
                                format!("record {number} is past the records binned"),
                            ));
                        };
                        if output == NO_OUTPUT || !group.contains(&(output as usize)) {
                            continue;
                        }
                        let output = output as usize;
                        let out = &mut writers[output - group.start];
                        let quality = batch.quality(i);
                        let outcome = if fastq {
                            if quality.len() != batch.sequence(i).len() {
                                return Err(CoreError::input(
                                    input,
                                    "is FASTA: its reads cannot be written as FASTQ",
                                ));
                            }
                            write_fastq_record(out, batch.name(i), batch.sequence(i), quality)
                        } else {
                            write_record(out, batch.name(i), batch.sequence(i))
                        };
                        outcome.map_err(|e| CoreError::file(&outputs[output], &e))?;
                        written[output] += 1;
                    }
                }
            }
            finish_writers(writers, &outputs[group])?;
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
    Ok(written)
}

fn write_fastq_record(
    out: &mut impl Write,
    name: &[u8],
    sequence: &[u8],
    quality: &[u8],
) -> std::io::Result<()> {
    out.write_all(b"@")?;
    out.write_all(name)?;
    out.write_all(b"\n")?;
    out.write_all(sequence)?;
    out.write_all(b"\n+\n")?;
    out.write_all(quality)?;
    out.write_all(b"\n")
}

type GzWriter = GzEncoder<BufWriter<File>>;

fn open_writers(paths: &[PathBuf], level: Compression) -> CoreResult<Vec<GzWriter>> {
    paths
        .iter()
        .map(|path| {
            let file = File::create(temporary_name(path)).map_err(|e| CoreError::file(path, &e))?;
            Ok(GzEncoder::new(
                BufWriter::with_capacity(1 << 16, file),
                level,
            ))
        })
        .collect()
}

fn finish_writers(writers: Vec<GzWriter>, paths: &[PathBuf]) -> CoreResult<()> {
    for (writer, path) in writers.into_iter().zip(paths) {
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

    #[test]
    fn reads_go_to_their_bins_with_qualities() {
        let dir = std::env::temp_dir().join(format!("vaebin-readbins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.fq");
        std::fs::write(
            &a,
            "@r1 x\nACGT\n+\nIIJJ\n@r2\nGG\n+\n##\n@r3\nTTT\n+\nABC\n",
        )
        .unwrap();
        let b = dir.join("b.fq");
        std::fs::write(&b, "@s1\nCCCC\n+\n!!!!\n").unwrap();
        let outputs = vec![dir.join("bin.1.fq.gz"), dir.join("unbinned.fq.gz")];
        let counts = write_read_bins(
            &[a.clone(), b],
            &[vec![1, NO_OUTPUT, 0], vec![0]],
            &outputs,
            true,
        )
        .unwrap();
        assert_eq!(counts, vec![2, 1]);
        assert_eq!(
            gunzip(&outputs[0]),
            "@r3\nTTT\n+\nABC\n@s1\nCCCC\n+\n!!!!\n"
        );
        assert_eq!(gunzip(&outputs[1]), "@r1\nACGT\n+\nIIJJ\n");
        let fasta = dir.join("c.fa");
        std::fs::write(&fasta, ">c1\nACGT\n").unwrap();
        let error = write_read_bins(
            std::slice::from_ref(&fasta),
            &[vec![0]],
            &outputs[..1],
            true,
        )
        .unwrap_err();
        assert!(error.to_string().contains("cannot be written as FASTQ"));
        assert!(!outputs[0].with_file_name(".bin.1.fq.gz.partial").exists());
        write_read_bins(&[fasta], &[vec![0]], &outputs[..1], false).unwrap();
        assert_eq!(gunzip(&outputs[0]), ">c1\nACGT\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
