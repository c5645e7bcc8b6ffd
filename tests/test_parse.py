"""Token parsing against values computed by hand with Python integers (docs/reference.md §1.5)."""

import numpy as np
import pyarrow as pa
import pytest

from sigeo.data.parse import AVAZU_KDD_MODULUS, decimal_or_hex_residues, residues, signed_integers


def col(*tokens: str) -> pa.Array:
    return pa.array([t.encode("latin1") for t in tokens], type=pa.binary())


def test_hex8_tokens_fast_path():
    tokens = ["68fd1e64", "00000000", "FFFFFFFF", "", "0000000a", "8a9F0c1B"]
    got = residues(col(*tokens), 16, 10131226)
    # 0x68fd1e64 = 1761418852 = 173 * 10131226 + 8716754
    assert got.values[0] == 8716754
    assert got.values[1] == 0
    assert got.values[2] == 4294967295 % 10131226
    assert got.values[4] == 10
    assert got.values[5] == 0x8A9F0C1B % 10131226
    assert got.empty.tolist() == [False, False, False, True, False, False]
    assert got.valid.all()


def test_hex8_rejects_every_non_hex_byte():
    tokens = [
        "0000000g",
        "G0000000",
        "000/0000",
        "0000:000",
        "00`00000",
        "0000000\xc3",
        "0000@000",
        "abcdef01",
    ]
    got = residues(col(*tokens), 16, 97)
    assert got.valid.tolist() == [False] * 7 + [True]


def test_variable_length_hex_general_path():
    tokens = ["a", "1f", "", "zz", "123456789abcdef0123", "10"]
    got = residues(col(*tokens), 16, 1000)
    assert got.values[0] == 10
    assert got.values[1] == 31
    assert got.empty[2]
    assert not got.valid[3]
    assert got.values[4] == 0x123456789ABCDEF0123 % 1000  # longer than 64 bits, still exact
    assert got.values[5] == 16
    assert got.valid[[0, 1, 2, 4, 5]].all()


def test_decimal_or_hex_like_the_avazu_tool():
    tokens = ["10000174058809263569", "1fbe01fe", "14102100", "0", "xyz"]
    got = decimal_or_hex_residues(col(*tokens), AVAZU_KDD_MODULUS)
    assert got.values[0] == 10000174058809263569 % 2147483647
    assert got.values[1] == 0x1FBE01FE % 2147483647
    assert got.values[2] == 14102100
    assert got.values[3] == 0
    assert got.valid.tolist() == [True, True, True, True, False]


@pytest.mark.parametrize("bad", ["12abc", "--3", "-", "1.5", "9" * 19, " 3"])
def test_signed_integers_rejects(bad):
    got = signed_integers(col("7", bad, ""))
    assert got.valid.tolist() == [True, False, True]
    assert got.values[0] == 7
    assert got.empty.tolist() == [False, False, True]


def test_signed_integers_values():
    got = signed_integers(col("-3", "0", "123456789012345678", "", "42"))
    assert got.values.tolist()[:3] == [-3, 0, 123456789012345678]
    assert got.values[4] == 42
    assert got.valid.all()
    np.testing.assert_array_equal(got.empty, [False, False, False, True, False])


@pytest.mark.parametrize("poison", ["", "x"], ids=["arrow-cast", "bytewise"])
def test_signed_integers_are_strict_on_both_paths(poison):
    """Arrow's cast reads '0x1f' as hex and int64's minimum fits it; neither is a valid token here,
    and a 22-digit token with leading zeros is its value on both paths (a clean column takes Arrow's
    cast, one bad token sends the whole column byte by byte)."""
    tokens = ["0x1f", "0X1F", " 5", "5 ", "+5", "-9223372036854775808", "1" + "0" * 18, "0" * 21 + "1", "-0", poison]
    got = signed_integers(col(*tokens))
    assert got.valid[:8].tolist() == [False] * 7 + [True]
    assert got.values[7] == 1 and got.values[8] == 0 and got.valid[8]
