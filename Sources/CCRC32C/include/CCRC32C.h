#ifndef C_CRC32C_H
#define C_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Whether this processor computes CRC-32C in hardware (x86-64 SSE4.2 `crc32`).
int brpl_crc32c_hardware_available(void);

/// Folds `length` bytes at `data` into the running CRC-32C `crc` (no initial or final XOR)
/// with the SSE4.2 `crc32` instruction. Only call when brpl_crc32c_hardware_available().
uint32_t brpl_crc32c_hardware_update(uint32_t crc, const void *data, size_t length);

#endif
