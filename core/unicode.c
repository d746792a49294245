/* unicode.c - UTF-8, code point properties and the GPT-2 byte alphabet (see unicode.h). */
#include "unicode.h"

unsigned bn_uc_flags(uint32_t cp) {
    if (cp > 0x10FFFF) return 0;
    /* binary search for the last run starting at or below cp */
    int lo = 0, hi = bn_uc_n_runs - 1;
    uint32_t key = cp << 8 | 0xFF;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (bn_uc_runs[mid] <= key)
            lo = mid;
        else
            hi = mid - 1;
    }
    return bn_uc_runs[lo] & 0xFF;
}

int bn_utf8_seq_len(uint8_t b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

int bn_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int len = bn_utf8_seq_len(b);
    if (len == 0 || (size_t)len > n) goto bad;
    /* the second byte's range depends on the lead (no overlongs, surrogates, > U+10FFFF) */
    uint8_t lo = 0x80, hi = 0xBF;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
    if (s[1] < lo || s[1] > hi) goto bad;
    uint32_t c = b & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto bad;
        c = c << 6 | (s[i] & 0x3F);
    }
    *cp = c;
    return len;
bad:
    *cp = BN_UC_INVALID;
    return 1;
}

int bn_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool gpt2_printable(int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t bn_gpt2_byte_to_cp(uint8_t b) {
    if (gpt2_printable(b)) return b;
    /* the n-th non-printable byte maps to 256 + n: bytes 0x00..0x20 are n = 0..32,
     * 0x7F..0xA0 are 33..66, 0xAD is 67 */
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7F && b <= 0xA0) return 256u + 33 + (b - 0x7Fu);
    return 256u + 67; /* 0xAD */
}

int bn_gpt2_cp_to_byte(uint32_t cp) {
    if (cp < 256) return gpt2_printable((int)cp) ? (int)cp : -1;
    if (cp <= 256 + 32) return (int)(cp - 256);
    if (cp <= 256 + 66) return (int)(cp - 256 - 33 + 0x7F);
    if (cp == 256 + 67) return 0xAD;
    return -1;
}
