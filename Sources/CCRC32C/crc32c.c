#include <string.h>
#include "CCRC32C.h"

// Swift cannot reach the SSE4.2 intrinsics; a frame's checksum covers every replicated byte
// on both sides, and the software tables cost about 10% of a follower's samples.
#if defined(__x86_64__)

int brpl_crc32c_hardware_available(void) {
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t brpl_crc32c_hardware_update(uint32_t crc, const void *data, size_t length) {
    const unsigned char *bytes = data;
    uint64_t running = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        running = __builtin_ia32_crc32di(running, word);
        bytes += 8;
        length -= 8;
    }
    uint32_t small = (uint32_t)running;
    while (length > 0) {
        small = __builtin_ia32_crc32qi(small, *bytes);
        bytes += 1;
        length -= 1;
    }
    return small;
}

#else

int brpl_crc32c_hardware_available(void) { return 0; }

uint32_t brpl_crc32c_hardware_update(uint32_t crc, const void *data, size_t length) {
    (void)data;
    (void)length;
    return crc;
}

#endif
