//! What the fuzz targets share: wrapping fuzz input as gzip or BGZF the way real files are, so
//! that the parsers behind the inflater see mutated content, not only checksum failures.
//!
//! The members hold stored (uncompressed) deflate blocks: valid for any inflater, and cheap
//! enough that wrapping costs nothing next to the parsing (a real deflate encoder per execution
//! cost more than the target itself).

/// Largest payload of one stored deflate block.
const STORED_MAX: usize = 65_535;

/// Appends one gzip member holding `piece`; with `bgzf`, with the BC extra field BGZF needs
/// (then `piece` must leave the member under 64 KiB).
pub fn push_member(out: &mut Vec<u8>, piece: &[u8], bgzf: bool) {
    if bgzf {
        // BSIZE counts the whole member less one: 18 bytes of header, 5 per stored block (one
        // here), the data, and the 8-byte trailer.
        let member_size = 18 + 5 + piece.len() + 8;
        out.extend_from_slice(&[
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0,
        ]);
        out.extend_from_slice(&((member_size - 1) as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    }
    let mut blocks = piece.chunks(STORED_MAX).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none();
        let length = block.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&(!length).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&libdeflater::crc32(piece).to_le_bytes());
    out.extend_from_slice(&(piece.len() as u32).to_le_bytes());
}

/// `data` as gzip members of `member` bytes each (one member when `member` is at least the
/// length), the way bgzip cuts a file; an empty `data` gives one empty member.
pub fn gzip(data: &[u8], member: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    if data.is_empty() {
        push_member(&mut out, data, false);
    }
    for piece in data.chunks(member.max(1)) {
        push_member(&mut out, piece, false);
    }
    out
}

/// `data` as BGZF: members of `payload` bytes (at most 65280, what htslib writes), then the
/// empty end-of-file member.
pub fn bgzf(data: &[u8], payload: usize) -> Vec<u8> {
    let payload = payload.clamp(1, 65_280);
    let mut out = Vec::with_capacity(data.len() + data.len() / payload * 31 + 64);
    for piece in data.chunks(payload) {
        push_member(&mut out, piece, true);
    }
    push_member(&mut out, &[], true);
    out
}
