#ifndef C_FILE_SYSTEM_SYNC_H
#define C_FILE_SYSTEM_SYNC_H

/// Flushes every dirty page and inode of the file system that holds `descriptor` with one
/// device flush: syncfs(2) on Linux. Elsewhere, sync(2) (which flushes every file system)
/// then 0. Returns -1 and sets errno on failure, like syncfs.
///
/// Glibc declares syncfs only under _GNU_SOURCE, which Swift's Glibc module does not define,
/// hence this one-function C target.
int brpl_syncfs(int descriptor);

/// Starts writing back the dirty pages of `length` bytes from `offset` without waiting for
/// them: sync_file_range(2) with SYNC_FILE_RANGE_WRITE on Linux (declared under _GNU_SOURCE
/// only), nothing elsewhere. It makes nothing durable; a later fsync or syncfs does, and
/// then has little left to write. Returns -1 and sets errno on failure.
int brpl_start_writeback(int descriptor, long long offset, long long length);

#endif
