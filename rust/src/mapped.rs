//! Read-only memory maps of stretches of a plain file. The FASTA workers then read the page
//! cache in place: `read()` copies every byte once more, which cost about a quarter of the whole
//! composition of a cached file.
//!
//! Like any memory-mapped reader, this assumes the file does not shrink while it is mapped: a
//! page past a new, shorter end cannot be read (the process gets SIGBUS). Elsewhere than 64-bit
//! Linux on x86_64 or aarch64, `Mapping::new` reports `Unsupported` and callers read instead.

use std::fs::File;
use std::io;

/// Mapping offsets are rounded down to this, a multiple of every page size Linux uses.
const ALIGN: u64 = 64 << 10;

/// `len` bytes of a file from `offset`, mapped read-only; unmapped when dropped.
pub struct Mapping {
    address: *mut u8,
    /// Bytes mapped, from the aligned offset.
    mapped: usize,
    /// Bytes between the aligned offset and the requested one.
    skip: usize,
}

// SAFETY: the mapping is read-only and private to this value; nothing else writes through it.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` (> 0) bytes of `file` from `offset`, reading them in from the page cache now
    /// (MAP_POPULATE) so that the thread that maps pays for the page-table work.
    pub fn new(file: &File, offset: u64, len: usize) -> io::Result<Mapping> {
        let aligned = offset & !(ALIGN - 1);
        let skip = (offset - aligned) as usize;
        let mapped = skip + len;
        let address = sys::map(file, aligned, mapped)?;
        Ok(Mapping {
            address,
            mapped,
            skip,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `address` starts `mapped` readable bytes that live until `drop`.
        unsafe { std::slice::from_raw_parts(self.address.add(self.skip), self.mapped - self.skip) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        sys::unmap(self.address, self.mapped);
    }
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapping({} bytes)", self.mapped - self.skip)
    }
}

#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod sys {
    use std::ffi::{c_int, c_void};
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    const PROT_READ: c_int = 1;
    const MAP_PRIVATE: c_int = 2;
    const MAP_POPULATE: c_int = 0x8000;

    extern "C" {
        fn mmap(
            address: *mut c_void,
            length: usize,
            protection: c_int,
            flags: c_int,
            descriptor: c_int,
            offset: i64,
        ) -> *mut c_void;
        fn munmap(address: *mut c_void, length: usize) -> c_int;
        fn madvise(address: *mut c_void, length: usize, advice: c_int) -> c_int;
    }

    const MADV_HUGEPAGE: c_int = 14;
    const PAGE: usize = 4096;

    /// Asks for transparent huge pages over `[address, address + len)`: a large table read at
    /// random then misses the TLB far less often. Advice only; failure changes nothing.
    pub fn advise_huge_pages(address: *const u8, len: usize) {
        let start = (address as usize).next_multiple_of(PAGE);
        let end = (address as usize + len) & !(PAGE - 1);
        if end > start {
            // SAFETY: madvise(MADV_HUGEPAGE) changes no content and the range lies inside an
            // allocation the caller owns.
            unsafe {
                madvise(start as *mut c_void, end - start, MADV_HUGEPAGE);
            }
        }
    }

    pub fn map(file: &File, offset: u64, len: usize) -> io::Result<*mut u8> {
        let offset = i64::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: a fresh read-only private mapping chosen by the kernel aliases no Rust memory.
        let address = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                PROT_READ,
                MAP_PRIVATE | MAP_POPULATE,
                file.as_raw_fd(),
                offset,
            )
        };
        if address as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(address.cast())
    }

    pub fn unmap(address: *mut u8, len: usize) {
        // SAFETY: `address` and `len` are those of a mapping made by `map` and unmapped once.
        unsafe {
            munmap(address.cast(), len);
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    target_pointer_width = "64",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod sys {
    use std::fs::File;
    use std::io;

    pub fn map(_file: &File, _offset: u64, _len: usize) -> io::Result<*mut u8> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn unmap(_address: *mut u8, _len: usize) {}

    pub fn advise_huge_pages(_address: *const u8, _len: usize) {}
}

pub use sys::advise_huge_pages;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn mapped_bytes_are_the_file_bytes() {
        let path = std::env::temp_dir().join(format!("vaebin-mapped-{}", std::process::id()));
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        File::create(&path).unwrap().write_all(&content).unwrap();
        let file = File::open(&path).unwrap();
        for (offset, len) in [
            (0, 1),
            (0, 300_000),
            (65_535, 10),
            (65_536, 70_000),
            (299_999, 1),
        ] {
            match Mapping::new(&file, offset as u64, len) {
                Ok(mapping) => assert_eq!(mapping.bytes(), &content[offset..offset + len]),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::Unsupported),
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}
