"""Points as text for SynthFace's annotation files, fast: the writer turns ~200 numbers per face into
text, which at Python's ``repr`` per float cost as much as drawing a face's eyes.

    pts_bytes(points)          the exact bytes distill.data.formats.write_pts writes (repr of each value + 1)
    pts_bytes_many(sets)       the same for a chunk of faces, all numbers formatted in one vectorised pass
    float32_numbers(values)    '%.9g' text that reads back to the same float32 (the WFLW annotation lines)
"""

from __future__ import annotations

import numpy as np


def pts_bytes(points: np.ndarray) -> bytes:
    """The bytes :func:`distill.data.formats.write_pts` writes for ``points`` (K, 2): ``repr`` of each
    float64(float32 value) + 1."""
    return pts_bytes_many([points])[0]


def pts_bytes_many(point_sets: list) -> list[bytes]:
    """:func:`pts_bytes` of several (K_i, 2) arrays, the numbers of all of them turned to text in one
    :func:`_shortest_reprs` call (its numpy steps cost the same for one face or a chunk)."""
    arrays = [np.asarray(p, dtype=np.float32).reshape(-1, 2) for p in point_sets]
    v = np.concatenate(arrays).astype(np.float64) + 1.0
    lines = _shortest_reprs(v.ravel(), b" \n").split(b"\n")
    out, start = [], 0
    for a in arrays:
        n = len(a)
        body = b"\n".join(lines[start:start + n])
        out.append(b"version: 1\nn_points: %d\n{\n%s%s}\n" % (n, body, b"\n" if n else b""))
        start += n
    return out


_EXACT = np.finfo(np.longdouble).nmant >= 63          # x87 extended (or quad): the products below are exact
_S_LONG = np.arange(13, 17)                           # fraction digits worth trying for a long expansion
_TEN_LONG = (10 ** _S_LONG).astype(np.longdouble)[:, None]                 # exact: 5^16 < 2^38
_POW5 = 5 ** np.arange(13, dtype=np.int64)
_POW10 = 10 ** np.arange(17, dtype=np.int64)
_CHUNKS = 10 ** np.array([12, 8, 4, 0], dtype=np.int64)
_DIGITS4 = np.array([list(b"%04d" % i) for i in range(10000)], np.uint8)   # i -> its 4 ASCII digits
_INT_BOUNDS = np.array([10.0, 100.0, 1000.0])
# which of the 22 characters of a row (4 integer digits, '.', 16 fraction digits, separator) a value
# with D + 1 integer digits and s fraction digits keeps: row D * 17 + s
_col = np.arange(22)
_KEEP = np.array([(_col >= 3 - d) & ((_col <= 4) | (_col == 21) | (_col < 5 + max(s, 1)))
                  for d in range(4) for s in range(17)])
_SEP_COLUMNS: dict = {}


def _shortest_reprs(v: np.ndarray, seps: bytes) -> bytes:
    """``"".join(repr(x) + sep)`` over the float64 values ``v`` with separators cycling through ``seps``,
    without a bignum dtoa per value.

    repr gives the shortest decimal that reads back to x (the closest one when several have that
    length). Here x = K / 2^f with K odd of at most 26 bits and x in [2, 10^4) (x = a float32 value
    >= 1, plus 1): its exact expansion has f fraction digits; a decimal with s < f fraction digits lies
    at least 1 / (5^s 2^f) from x, more than half an ulp of x (2^(E - 53), E + f <= 25) unless
    5^s >= 2^28, i.e. s >= 13. So repr has f digits when f <= 12 (the exact K 5^f), else 13..16 - D
    (D + 1 integer digits): for those, P_s = x 10^s is exact in 64-bit long double, N_s = rint(P_s), and
    N_s / 10^s reads back to x iff |N_s - P_s| < half an ulp times 10^s (a tie takes repr); the
    smallest passing s wins (17 significant digits always pass). Other values, and platforms whose
    long double is a plain double, take repr itself."""
    if not _EXACT or not ((v >= 2.0) & (v < 1e4)).all():
        return _repr_join(v.tolist(), seps)
    mant, expo = np.frexp(v)                                              # v = mant 2^expo, mant in [0.5, 1)
    m53 = np.ldexp(mant, 53).astype(np.int64)                             # 53-bit integer mantissa (> 0)
    tz = np.frexp((m53 & -m53).astype(np.float64))[1] - 1                 # its trailing zero bits
    K = m53 >> tz                                                         # odd
    f = 53 - expo - tz                                                    # v = K / 2^f
    if (K >= (1 << 26)).any() or (mant == 0.5).any():                     # too many bits / a power of two
        return _repr_join(v.tolist(), seps)
    short = f <= 12
    s = np.maximum(f, 0)
    n = np.zeros(len(v), np.int64)
    if short.any():
        i = np.flatnonzero(short)
        fi = f[i]
        n[i] = np.where(fi >= 0, K[i] * _POW5[np.maximum(fi, 0)], K[i] << np.maximum(-fi, 0))   # x 10^s
    if not short.all():
        i = np.flatnonzero(~short)
        P = v[i].astype(np.longdouble)[None, :] * _TEN_LONG               # (4, K'), exact
        N = np.rint(P)
        err = np.abs(N - P)
        half = np.ldexp(_TEN_LONG, (expo[i] - 54)[None, :])               # half an ulp, times 10^s
        ok = err < half
        if (err == half).any() or not ok.any(axis=0).all():
            return _repr_join(v.tolist(), seps)
        row = ok.argmax(axis=0)
        s[i] = row + 13
        n[i] = N[row, np.arange(len(i))].astype(np.int64)
    ip, fp = np.divmod(n, _POW10[s])
    d = np.searchsorted(_INT_BOUNDS, ip, side="right")                    # D: ip has D + 1 digits
    frac = fp * _POW10[16 - s]                                            # 16 fraction digits
    chars = np.empty((len(v), 22), np.uint8)
    chars[:, 0:4] = _DIGITS4[ip]
    chars[:, 5:21] = _DIGITS4[(frac[:, None] // _CHUNKS) % 10000].reshape(-1, 16)
    chars[:, 4] = 46                                                      # "."
    chars[:, 21] = _sep_column(seps, len(v))
    return chars[_KEEP[d * 17 + s]].tobytes()


def _sep_column(seps: bytes, n: int) -> np.ndarray:
    col = _SEP_COLUMNS.get((seps, n))
    if col is None:
        col = _SEP_COLUMNS[(seps, n)] = np.resize(np.frombuffer(seps, np.uint8), n)
    return col


def _repr_join(values: list, seps: bytes) -> bytes:
    k = len(seps)
    fmt = "".join("%r" + chr(c) for c in seps) * (len(values) // k) + "".join("%r" + chr(c) for c in seps[:len(values) % k])
    return (fmt % tuple(values)).encode()


def float32_numbers(values: np.ndarray, per: int) -> list[str]:
    """float32 values as text that reads back to the same float32 ('%.9g': 9 significant digits always
    round-trip a float32, through a float64 parse too, at a third of repr's cost), space-separated,
    one string per ``per`` values (a face's coordinates)."""
    flat = np.asarray(values, dtype=np.float32).astype(np.float64).ravel().tolist()
    tokens = ("%.9g " * len(flat) % tuple(flat)).split(" ")
    return [" ".join(tokens[i:i + per]) for i in range(0, len(flat), per)]
