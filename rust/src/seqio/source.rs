//! Opening a sequence file: plain, gzip or bgzip, told from the first two bytes (the gzip
//! magic 0x1f 0x8b), never from the name. Compressed input is inflated on a thread of its own.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use crate::errors::{CoreError, CoreResult};

/// Bytes asked of the file (or of the inflater) at a time.
///
/// Fuzz builds (`cfg(fuzzing)`, set by cargo-fuzz) use small buffers: small inputs then grow the
/// line buffer and cross chunk boundaries, and an execution does not spend its time zeroing
/// megabytes.
pub(super) const READ_CHUNK_BYTES: usize = if cfg!(fuzzing) { 1 << 12 } else { 1 << 20 };

/// Decompresses on a thread of its own so inflating and parsing overlap.
struct ThreadedReader {
    receiver: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    offset: usize,
    handle: Option<JoinHandle<()>>,
    finished: bool,
}

impl ThreadedReader {
    fn new<R: Read + Send + 'static>(mut inner: R) -> Self {
        let (sender, receiver) = sync_channel(8);
        let handle = std::thread::spawn(move || loop {
            let mut chunk = vec![0u8; READ_CHUNK_BYTES];
            let mut filled = 0;
            let result = loop {
                match inner.read(&mut chunk[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        filled += n;
                        if filled == chunk.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            chunk.truncate(filled);
            let done = filled == 0 || result.is_err();
            let message = match result {
                Err(e) if filled == 0 => Err(e),
                Err(e) => {
                    // Hand over what was inflated before the failure, then the failure itself.
                    if sender.send(Ok(chunk)).is_err() {
                        return;
                    }
                    Err(e)
                }
                Ok(()) => Ok(chunk),
            };
            if sender.send(message).is_err() || done {
                return;
            }
        });
        ThreadedReader {
            receiver,
            current: Vec::new(),
            offset: 0,
            handle: Some(handle),
            finished: false,
        }
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.offset == self.current.len() {
            if self.finished {
                return Ok(0);
            }
            match self.receiver.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.finished = true,
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.offset = 0;
                }
                Ok(Err(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                Err(_) => self.finished = true,
            }
        }
        let n = out.len().min(self.current.len() - self.offset);
        out[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

impl Drop for ThreadedReader {
    fn drop(&mut self) {
        // Unblock the producer before joining it.
        let (_, empty) = sync_channel(0);
        self.receiver = empty;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Opens `path`, inflating gzip/bgzip when the content starts with the gzip magic bytes.
pub fn open_decompressed(path: &Path) -> CoreResult<(Box<dyn Read + Send>, bool)> {
    let file = File::open(path).map_err(|e| CoreError::file(path, &e))?;
    if let Ok(meta) = file.metadata() {
        if meta.is_dir() {
            return Err(CoreError::input(path, "is a directory, not a file"));
        }
    }
    decompressed(Box::new(file)).map_err(|e| CoreError::file(path, &e))
}

/// `source`, inflated when it starts with the gzip magic bytes; and whether it was compressed.
/// `open_decompressed` of a stream that is not a file (tests and fuzzing).
pub fn decompressed(mut source: Box<dyn Read + Send>) -> io::Result<(Box<dyn Read + Send>, bool)> {
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match source.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = io::Cursor::new(magic[..got].to_vec());
    let stream = head.chain(source);
    if got == 2 && magic == [0x1f, 0x8b] {
        // MultiGzDecoder reads bgzip (a series of gzip members) as well as plain gzip.
        let decoder = flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(
            READ_CHUNK_BYTES,
            stream,
        ));
        if cfg!(fuzzing) {
            // Fuzz builds inflate in the calling thread: starting a thread per execution took
            // most of its time, and the hand-over is not what the fuzzing is after.
            return Ok((Box::new(decoder), true));
        }
        Ok((Box::new(ThreadedReader::new(decoder)), true))
    } else {
        Ok((Box::new(stream), false))
    }
}

/// The problem to report when reading (or inflating) a sequence file fails.
pub fn read_problem(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::UnexpectedEof => {
            "compressed data ends early (truncated gzip file)".to_string()
        }
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            format!("corrupt gzip data ({err})")
        }
        _ => format!("read failed ({err})"),
    }
}
