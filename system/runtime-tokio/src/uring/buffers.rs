//! The provided buffer ring the driver's multishot receives take their buffers from.
//!
//! The kernel picks a free buffer for each message it receives and says which in the
//! completion; the driver copies the message out and gives the buffer back by writing it into
//! the ring and moving the ring's tail. One armed receive per socket then serves every message,
//! where a posted receive per message needed a new submission entry each time.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::mem::size_of;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The ring's alignment: the kernel maps it by pages.
const PAGE_BYTES: usize = 4096;

/// `count` buffers of `buffer_bytes` each, registered with a ring as group `group`.
pub(super) struct BufferRing {
    /// `count` ring entries, page-aligned; entry 0's reserved field is the tail the kernel reads.
    entries: *mut BufRingEntry,
    entries_layout: Layout,
    /// The buffers themselves, written by the kernel while they are in the ring.
    memory: *mut u8,
    memory_layout: Layout,
    count: u16,
    buffer_bytes: usize,
    /// Entries written so far (wrapping): the next one goes at `tail & (count - 1)`.
    tail: u16,
}

impl BufferRing {
    /// Allocates the buffers, puts every one in the ring and registers it with `ring`. Fails on
    /// kernels without provided buffer rings (before 5.19).
    pub(super) fn register(ring: &IoUring, group: u16, count: u16, buffer_bytes: usize) -> io::Result<BufferRing> {
        assert!(
            count.is_power_of_two(),
            "a buffer ring's size is a power of two, not {count}"
        );
        assert!(buffer_bytes.is_multiple_of(8), "buffers keep control messages aligned");
        let entries_layout = Layout::from_size_align(usize::from(count) * size_of::<BufRingEntry>(), PAGE_BYTES)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let memory_layout = Layout::from_size_align(usize::from(count) * buffer_bytes, PAGE_BYTES)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: both layouts have a non-zero size (count ≥ 1, buffer_bytes ≥ 8).
        let (entries, memory) = unsafe { (alloc_zeroed(entries_layout), alloc_zeroed(memory_layout)) };
        let mut buffers = BufferRing {
            entries: entries.cast(),
            entries_layout,
            memory,
            memory_layout,
            count,
            buffer_bytes,
            tail: 0,
        };
        if entries.is_null() || memory.is_null() {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "io_uring receive buffers"));
        }
        for bid in 0..count {
            buffers.push(bid);
        }
        buffers.publish();
        // SAFETY: the entries stay allocated, page-aligned, until this value is dropped, which the
        // driver does only after every receive using the group has completed.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, count, group, 0)?;
        }
        Ok(buffers)
    }

    /// Writes buffer `bid` into the next ring entry (the kernel sees it once published).
    fn push(&mut self, bid: u16) {
        debug_assert!(bid < self.count);
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot < count`, within the allocation; the kernel reads entries only up to the
        // published tail, and this one is past it.
        let entry = unsafe { &mut *self.entries.add(slot) };
        entry.set_addr(self.memory as u64 + u64::from(bid) * self.buffer_bytes as u64);
        entry.set_len(self.buffer_bytes as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Lets the kernel see every entry written so far.
    fn publish(&self) {
        // SAFETY: `entries` is the ring's first entry, initialised; its reserved field is the
        // tail, which the kernel reads and only this thread writes.
        let tail = unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.entries).cast_mut()) };
        tail.store(self.tail, Ordering::Release);
    }

    /// The first `len` bytes of buffer `bid`, which the kernel filled and handed over.
    pub(super) fn filled(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.count || len > self.buffer_bytes {
            return None;
        }
        // SAFETY: within the allocation; the kernel handed this buffer over in a completion and
        // does not write it again until it is given back.
        Some(unsafe { std::slice::from_raw_parts(self.memory.add(usize::from(bid) * self.buffer_bytes), len) })
    }

    /// Gives buffer `bid` back to the kernel once what it held has been copied out.
    pub(super) fn give_back(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }
}

impl Drop for BufferRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with these layouts (null when allocation failed).
        unsafe {
            if !self.entries.is_null() {
                dealloc(self.entries.cast(), self.entries_layout);
            }
            if !self.memory.is_null() {
                dealloc(self.memory, self.memory_layout);
            }
        }
    }
}
