/* unicode.h - what the tokenizers need from Unicode: UTF-8 decoding and
 * encoding, code point properties (letter, number, whitespace, ...) from the
 * generated table core/unicode_tables.c (scripts/gen_unicode_tables.py), and
 * GPT-2's byte-level alphabet (every byte shown as a printable code point). */
#ifndef BN_UNICODE_H
#define BN_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Property flags of a code point (the general category's major class, plus White_Space). */
enum {
    BN_UC_LETTER = 0x01, /* L* */
    BN_UC_NUMBER = 0x02, /* N* */
    BN_UC_PUNCT = 0x04,  /* P* */
    BN_UC_SYMBOL = 0x08, /* S* */
    BN_UC_MARK = 0x10,   /* M* */
    BN_UC_SEP = 0x20,    /* Z* */
    BN_UC_OTHER = 0x40,  /* Cc Cf Cs Co */
    BN_UC_SPACE = 0x80,  /* White_Space */
};

extern const uint32_t bn_uc_runs[]; /* (start << 8) | flags, sorted */
extern const int bn_uc_n_runs;
extern const char bn_uc_version[]; /* "15.0.0" */

/* Flags of code point cp (0 for unassigned or out of range). */
unsigned bn_uc_flags(uint32_t cp);

/* Decodes the UTF-8 sequence at s (n > 0 bytes available) into *cp and returns
 * its length. A malformed or truncated sequence, an overlong form, a surrogate or
 * a value past U+10FFFF decodes as one byte with *cp = BN_UC_INVALID. */
#define BN_UC_INVALID 0xFFFFFFFFu
int bn_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Writes cp (<= U+10FFFF) as UTF-8 into out (4 bytes room); returns the length. */
int bn_utf8_encode(uint32_t cp, char *out);
/* Length of a complete sequence starting with lead byte b (1..4), or 0 if b cannot start one. */
int bn_utf8_seq_len(uint8_t b);

/* GPT-2's byte-level alphabet: byte b <-> a printable code point (the byte itself
 * for '!'..'~', 0xA1..0xAC, 0xAE..0xFF; 256 + n for the n-th other byte). */
uint32_t bn_gpt2_byte_to_cp(uint8_t b);
/* The byte a code point stands for, or -1 if it is not in the alphabet. */
int bn_gpt2_cp_to_byte(uint32_t cp);

#endif
