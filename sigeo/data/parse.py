"""Vectorised parsing of raw text columns (Arrow binary arrays) into numbers.

The reference parses every token in Python on every epoch; here each column of a chunk is turned
into numbers once, with NumPy over the raw bytes. Categorical tokens are never materialised as
integers: only their residue modulo the hash modulus is needed, and computing it digit by digit
(``sum(d_k * base**k mod M)``) is exact for tokens of any length and base, so 20-digit Avazu ids
and over-long garbage are handled without overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Modulus the reference applies to Avazu/KDD tokens before hex-encoding them (2^31 - 1).
AVAZU_KDD_MODULUS = 2_147_483_647
#: Integers (labels, dense values, UserIDs) need at most this many significant digits; larger ones are
#: rejected, not clipped.
MAX_DENSE_DIGITS = 18
_LIMIT = 10**MAX_DENSE_DIGITS

_DIGIT_VALUE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789"):
    _DIGIT_VALUE[_c] = _i
for _i, _c in enumerate(b"abcdef"):
    _DIGIT_VALUE[_c] = 10 + _i
    _DIGIT_VALUE[_c - 32] = 10 + _i  # upper case


@dataclass(frozen=True)
class ParsedColumn:
    """Numbers parsed from one column of a chunk, with per-row validity.

    ``values`` is meaningful only where ``valid & ~empty``; ``empty`` rows are missing values.
    """

    values: np.ndarray
    valid: np.ndarray
    empty: np.ndarray


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (length n+1, starting at 0) and the bytes of a binary/string Arrow array."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = arr.fill_null(b"")
    _, offsets_buf, data_buf = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1 + arr.offset)[arr.offset :]
    offsets = offsets.astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8, count=end)[start:end] if data_buf else np.empty(0, np.uint8)
    return offsets - start, data


def _digit_layout(offsets: np.ndarray, data: np.ndarray, base: int) -> tuple[np.ndarray, ...]:
    """Per byte: its row, its exponent (position from the row's end) and its digit value."""
    lengths = np.diff(offsets)
    row = np.repeat(np.arange(len(lengths)), lengths)
    exponent = offsets[1:][row] - 1 - np.arange(len(data))
    digit = _DIGIT_VALUE[data]
    bad_byte = digit >= base
    return lengths, row, exponent, digit, bad_byte


def _row_sums(contrib: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths), dtype=contrib.dtype)
    nonempty = lengths > 0
    if nonempty.any():
        out[nonempty] = np.add.reduceat(contrib, offsets[:-1][nonempty])
    return out


_U = np.uint64
_HIGH_BITS = _U(0x8080808080808080)


def _hex8_words(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and validity of consecutive 8-character hex tokens, eight bytes at a time (SWAR).

    Criteo's categorical tokens are all 8 hex digits. Reading each as one little-endian uint64
    and working on all eight bytes with shifts and masks (range checks by carries into bit 7 of
    each byte, then nibble packing) is several times faster than per-byte NumPy arithmetic.
    """
    w = data.view("<u8")
    lowered = w | _U(0x2020202020202020)
    digit = (w + _U(0x5050505050505050)) & ~(w + _U(0x4646464646464646))  # '0' <= b <= '9'
    letter = (lowered + _U(0x1F1F1F1F1F1F1F1F)) & ~(lowered + _U(0x1919191919191919))  # 'a' <= b <= 'f'
    valid = (((digit | letter) & _HIGH_BITS) == _HIGH_BITS) & ((w & _HIGH_BITS) == 0)
    nib = (w & _U(0x0F0F0F0F0F0F0F0F)) + _U(9) * ((w >> _U(6)) & _U(0x0101010101010101))
    pairs = _U(0x000F000F000F000F)
    t = ((nib & pairs) << _U(4)) | ((nib >> _U(8)) & pairs)
    quads = _U(0x000000FF000000FF)
    t = ((t & quads) << _U(8)) | ((t >> _U(16)) & quads)
    value = ((t & _U(0xFFFF)) << _U(16)) | ((t >> _U(32)) & _U(0xFFFF))
    return value, valid


def residues(arr: pa.Array, base: int, modulus: int) -> ParsedColumn:
    """Residue modulo ``modulus`` of each token read as an unsigned integer in ``base`` (10 or 16)."""
    offsets, data = _buffers(arr)
    return _residues(offsets, data, base, modulus)


def _residues(offsets: np.ndarray, data: np.ndarray, base: int, modulus: int) -> ParsedColumn:
    """Exact for any token length because each digit contributes ``d * (base**k mod modulus)``."""
    if not 1 <= modulus < 2**32:
        raise ValueError(f"modulus must be in [1, 2**32), got {modulus}")
    lengths = np.diff(offsets)
    empty = lengths == 0
    if base == 16 and len(data) and not np.any(lengths & ~8):  # every token has 0 or 8 characters
        words, ok = _hex8_words(data)
        words %= _U(modulus)
        if len(words) == len(lengths):
            return ParsedColumn(values=words, valid=ok, empty=empty)
        values = np.zeros(len(lengths), dtype=np.uint64)
        values[~empty] = words
        valid = np.ones(len(lengths), dtype=bool)
        valid[~empty] = ok
        return ParsedColumn(values=values, valid=valid, empty=empty)
    lengths, row, exponent, digit, bad_byte = _digit_layout(offsets, data, base)
    max_len = int(lengths.max()) if len(lengths) else 0
    powers = np.ones(max(max_len, 1), dtype=np.uint64)
    for k in range(1, max_len):
        powers[k] = (int(powers[k - 1]) * base) % modulus
    contrib = np.where(bad_byte, 0, digit).astype(np.uint64) * powers[exponent]
    sums = _row_sums(contrib, offsets, lengths) % np.uint64(modulus)
    valid = np.ones(len(lengths), dtype=bool)
    valid[row[bad_byte]] = False
    return ParsedColumn(values=sums, valid=valid, empty=empty)


def _strip_minus(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose token starts with '-', and the bytes with that sign replaced by a harmless '0'."""
    nonempty = np.diff(offsets) > 0
    negative = np.zeros(len(offsets) - 1, dtype=bool)
    negative[nonempty] = data[offsets[:-1][nonempty]] == ord("-")
    if negative.any():
        data = data.copy()
        data[offsets[:-1][negative]] = ord("0")
    return negative, data


def decimal_or_hex_residues(arr: pa.Array, modulus: int) -> ParsedColumn:
    """Residues of tokens read as (signed) decimal when they parse so, else as hex.

    This is the Avazu/KDD tool's ``int(v)`` then ``int(v, 16)``, followed by Python's ``v % modulus``
    (non-negative for negative ``v``: Avazu's C20 holds -1).
    """
    offsets, data = _buffers(arr)
    negative, unsigned = _strip_minus(offsets, data)
    dec = _residues(offsets, unsigned, 10, modulus)
    dec_values = np.where(negative, (np.uint64(modulus) - dec.values) % np.uint64(modulus), dec.values)
    dec_valid = dec.valid & ~(negative & (np.diff(offsets) == 1))
    if dec_valid.all():
        return ParsedColumn(values=dec_values, valid=dec_valid, empty=dec.empty)
    hexa = _residues(offsets, data, 16, modulus)
    return ParsedColumn(
        values=np.where(dec_valid, dec_values, hexa.values),
        valid=dec_valid | hexa.valid,
        empty=dec.empty,
    )


def signed_integers(arr: pa.Array) -> ParsedColumn:
    """Decimal integers ``-?[0-9]+`` of magnitude below 10^18 (exact in int64); anything else is invalid.

    Arrow's C++ cast is fast but lenient (it also reads ``0x1f`` as hex and, in a typed CSV column,
    trims spaces), so it only handles columns whose bytes are all digits with at most a leading
    '-'; any other column is parsed byte by byte, which finds exactly which rows are bad.
    """
    offsets, data = _buffers(arr)
    minus = data == ord("-")
    starts = offsets[:-1][np.diff(offsets) > 0]
    if np.all((data - ord("0") < 10) | minus) and np.count_nonzero(minus) == np.count_nonzero(minus[starts]):
        empty = pc.equal(pc.binary_length(arr), 0)
        try:
            as_text = pc.if_else(empty, pa.scalar(None, arr.type), arr).cast(pa.string())
            values = as_text.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:  # a lone '-', or beyond int64
            pass
        else:
            if np.all((values > -_LIMIT) & (values < _LIMIT)):
                empty_np = empty.to_numpy(zero_copy_only=False)
                return ParsedColumn(values=values, valid=np.ones(len(values), dtype=bool), empty=empty_np)
    return _signed_integers_bytewise(offsets, data)


def _signed_integers_bytewise(offsets: np.ndarray, data: np.ndarray) -> ParsedColumn:
    """Leading zeros are allowed; a non-zero digit at 10^18 or above makes the row invalid."""
    negative, data = _strip_minus(offsets, data)
    lengths, row, exponent, digit, bad_byte = _digit_layout(offsets, data, 10)
    too_big = exponent >= MAX_DENSE_DIGITS
    contrib = np.where(bad_byte | too_big, 0, digit).astype(np.int64) * (10 ** np.where(too_big, 0, exponent))
    values = _row_sums(contrib, offsets, lengths)
    values = np.where(negative, -values, values)
    valid = ~(negative & (lengths == 1))
    valid[row[bad_byte | (too_big & (digit != 0))]] = False
    return ParsedColumn(values=values, valid=valid, empty=lengths == 0)
