#ifndef C_FILE_SYSTEM_SYNC_H
#define C_FILE_SYSTEM_SYNC_H

/// Flushes every dirty page and inode of the file system that holds `descriptor` with one
/// device flush: syncfs(2) on Linux. Elsewhere, sync(2) (which flushes every file system)
/// then 0. Returns -1 and sets errno on failure, like syncfs.
///
/// Glibc declares syncfs only under _GNU_SOURCE, which Swift's Glibc module does not define,
/// hence this one-function C target.
int brpl_syncfs(int descriptor);

#endif
