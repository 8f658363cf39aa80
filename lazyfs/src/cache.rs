//! The page cache of one file: what its writes and truncations changed
//! since its last fsync, over what its backing file holds (the durable
//! contents).
//!
//! The backing file is never written between two fsyncs of the file. A read
//! is served from the dirty pages where there are some, else from the
//! backing file; backing bytes at or after the *floor* (the smallest size
//! the file was truncated to since its last fsync) are stale and read as
//! zeros, so a file truncated and extended again does not show its old
//! tail. [`FileCache::flush`] writes the dirty pages and the size to the
//! backing file; dropping the cache is a crash.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;

/// Size of a cached page.
pub const PAGE: u64 = 4096;

/// The unsynced state of one file.
#[derive(Debug, Clone)]
pub struct FileCache {
    /// The size the file has for its users.
    size: u64,
    /// Backing bytes at offsets `>= floor` do not belong to the file any more.
    floor: u64,
    /// Dirty pages by page index, each `PAGE` bytes (zeros past `size`).
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl FileCache {
    /// A clean cache over a backing file of `backing_size` bytes.
    pub fn new(backing_size: u64) -> FileCache {
        FileCache {
            size: backing_size,
            floor: backing_size,
            pages: BTreeMap::new(),
        }
    }

    /// The file's size as its users see it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when nothing differs from the backing file.
    pub fn is_clean(&self) -> bool {
        self.pages.is_empty() && self.floor == self.size
    }

    /// Bytes held in dirty pages.
    pub fn dirty_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    /// The page `idx` as the file holds it now, from the backing file when
    /// it is not dirty.
    fn base_page(&self, backing: &impl FileExt, idx: u64) -> std::io::Result<Box<[u8]>> {
        let mut buf = vec![0u8; PAGE as usize].into_boxed_slice();
        let start = idx * PAGE;
        let valid = self.floor.min(self.size).saturating_sub(start).min(PAGE) as usize;
        let mut got = 0;
        while got < valid {
            match backing.read_at(&mut buf[got..valid], start + got as u64) {
                Ok(0) => break, // the backing file is shorter: zeros
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(buf)
    }

    /// Reads up to `len` bytes at `offset` (fewer at the end of the file).
    pub fn read(
        &self,
        backing: &impl FileExt,
        offset: u64,
        len: usize,
    ) -> std::io::Result<Vec<u8>> {
        let end = offset.saturating_add(len as u64).min(self.size);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut pos = offset;
        while pos < end {
            let idx = pos / PAGE;
            let in_page = (pos % PAGE) as usize;
            let take = ((PAGE as usize - in_page) as u64).min(end - pos) as usize;
            match self.pages.get(&idx) {
                Some(p) => out.extend_from_slice(&p[in_page..in_page + take]),
                None => {
                    let p = self.base_page(backing, idx)?;
                    out.extend_from_slice(&p[in_page..in_page + take]);
                }
            }
            pos += take as u64;
        }
        Ok(out)
    }

    /// Writes `data` at `offset` into the cache (the backing file is untouched).
    pub fn write(
        &mut self,
        backing: &impl FileExt,
        offset: u64,
        data: &[u8],
    ) -> std::io::Result<()> {
        let end = offset + data.len() as u64;
        let mut pos = offset;
        while pos < end {
            let idx = pos / PAGE;
            let in_page = (pos % PAGE) as usize;
            let take = ((PAGE as usize - in_page) as u64).min(end - pos) as usize;
            if !self.pages.contains_key(&idx) {
                let whole = in_page == 0 && take == PAGE as usize;
                let page = if whole {
                    vec![0u8; PAGE as usize].into_boxed_slice()
                } else {
                    self.base_page(backing, idx)?
                };
                self.pages.insert(idx, page);
            }
            let page = self.pages.get_mut(&idx).expect("inserted above");
            let from = (pos - offset) as usize;
            page[in_page..in_page + take].copy_from_slice(&data[from..from + take]);
            pos += take as u64;
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// Sets the file's size: cut pages (and stale backing bytes) past it, or
    /// extend it with zeros.
    pub fn truncate(&mut self, size: u64) {
        if size < self.size {
            let first_gone = size.div_ceil(PAGE);
            self.pages.split_off(&first_gone);
            if let Some(p) = self.pages.get_mut(&(size / PAGE)) {
                // (none when `size` is on a page boundary: split off above)
                p[(size % PAGE) as usize..].fill(0);
            }
            self.floor = self.floor.min(size);
        }
        self.size = size;
    }

    /// Writes the cache to the backing file (which must be open for
    /// writing): stale bytes cut, dirty pages written, size set. The cache
    /// is clean afterwards.
    pub fn flush(&mut self, backing: &std::fs::File) -> std::io::Result<()> {
        let backing_len = backing.metadata()?.len();
        if backing_len > self.floor {
            backing.set_len(self.floor)?;
        }
        for (&idx, page) in &self.pages {
            let start = idx * PAGE;
            if start >= self.size {
                break;
            }
            let len = (self.size - start).min(PAGE) as usize;
            backing.write_all_at(&page[..len], start)?;
        }
        backing.set_len(self.size)?;
        self.pages.clear();
        self.floor = self.size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn backing(bytes: &[u8]) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn contents(f: &std::fs::File) -> Vec<u8> {
        let len = f.metadata().unwrap().len() as usize;
        let mut v = vec![0; len];
        f.read_exact_at(&mut v, 0).unwrap();
        v
    }

    #[test]
    fn reads_see_writes_over_the_backing_bytes_which_stay_untouched() {
        let b = backing(b"hello world");
        let mut c = FileCache::new(11);
        c.write(&b, 6, b"there, friend").unwrap();
        assert_eq!(c.read(&b, 0, 100).unwrap(), b"hello there, friend");
        assert_eq!(c.size(), 19);
        assert_eq!(contents(&b), b"hello world", "nothing written before fsync");
    }

    #[test]
    fn writes_across_pages_and_past_the_end_leave_zeros_in_the_hole() {
        let b = backing(b"");
        let mut c = FileCache::new(0);
        let far = PAGE * 3 - 2;
        c.write(&b, far, b"abcd").unwrap();
        let all = c.read(&b, 0, (PAGE * 4) as usize).unwrap();
        assert_eq!(all.len() as u64, far + 4);
        assert!(all[..far as usize].iter().all(|&x| x == 0));
        assert_eq!(&all[far as usize..], b"abcd");
        assert_eq!(c.dirty_bytes(), 2 * PAGE);
    }

    #[test]
    fn a_truncated_then_extended_file_reads_zeros_not_its_old_tail() {
        let b = backing(&[7u8; 10_000]);
        let mut c = FileCache::new(10_000);
        c.truncate(100);
        c.truncate(9_000);
        let r = c.read(&b, 0, 10_000).unwrap();
        assert_eq!(r.len(), 9_000);
        assert!(r[..100].iter().all(|&x| x == 7));
        assert!(r[100..].iter().all(|&x| x == 0), "old tail must not show");
        // a write into the zeroed region keeps the zeros around it
        c.write(&b, 5_000, b"x").unwrap();
        let r = c.read(&b, 4_999, 3).unwrap();
        assert_eq!(r, vec![0, b'x', 0]);
    }

    #[test]
    fn flush_makes_the_backing_file_what_the_users_saw() {
        let b = backing(&[1u8; 9_000]);
        let mut c = FileCache::new(9_000);
        c.truncate(50);
        c.write(&b, 4_000, b"end").unwrap();
        let seen = c.read(&b, 0, 100_000).unwrap();
        c.flush(&b).unwrap();
        assert!(c.is_clean());
        assert_eq!(contents(&b), seen);
        assert_eq!(c.read(&b, 0, 100_000).unwrap(), seen);
    }

    #[test]
    fn a_truncation_inside_a_dirty_page_zeroes_its_tail() {
        let b = backing(b"");
        let mut c = FileCache::new(0);
        c.write(&b, 0, &[9u8; 100]).unwrap();
        c.truncate(10);
        c.truncate(100);
        let r = c.read(&b, 0, 100).unwrap();
        assert!(r[..10].iter().all(|&x| x == 9) && r[10..].iter().all(|&x| x == 0));
    }
}
