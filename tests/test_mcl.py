"""The mcl vector layer against the arkworks reference, operation by
operation, and its load-time checks."""

from __future__ import annotations

import ctypes
import importlib.metadata
import random

import pytest

from zksolv.core import mcl
from zksolv.core.field import R
from zksolv.core.generators import GENERATOR_DST
from zksolv.core.group import IDENTITY_BYTES, get_backend
from zksolv.errors import FormatError

pytestmark = pytest.mark.skipif(not mcl.available(), reason="mcl not loadable here")

ARK = get_backend("arkworks")


def _points(n: int) -> tuple[list[bytes], list[object]]:
    fast = get_backend("mcl")
    msgs = [b"mcl-test-%d" % i for i in range(n)]
    return ([fast.hash_to_curve(m, GENERATOR_DST) for m in msgs],
            [ARK.hash_to_curve(m, GENERATOR_DST) for m in msgs])


def test_scalars_go_to_mcl_in_montgomery_form() -> None:
    lib = mcl.library()
    rng = random.Random(1)
    for k in [0, 1, R - 1, *(rng.randrange(R) for _ in range(20))]:
        fr = ctypes.create_string_buffer(mcl.FR_RAW)
        assert lib.mclBnFr_setLittleEndian(fr, k.to_bytes(32, "little"), 32) == 0
        assert fr.raw == mcl.fr_bytes([k])


@pytest.mark.parametrize("n", [1, 2, 7, 64, 300])
def test_msm_matches_arkworks(n: int) -> None:
    rng = random.Random(n)
    ks = [rng.randrange(R) for _ in range(n)]
    pm, pa = _points(n)
    assert mcl.G1Vec.of(pm).n == n
    fast = get_backend("mcl")
    assert fast.encode(mcl.msm(mcl.G1Vec.of(pm), mcl.fr_bytes(ks))) == ARK.encode(ARK.msm(pa, ks))
    # negative and unreduced scalars reduce mod r, as on every backend
    ks2 = [-k for k in ks[:3]] + [k + R for k in ks[3:]]
    assert fast.encode(fast.msm(pm, ks2)) == ARK.encode(ARK.msm(pa, ks2))


def test_mul_each_add_halves_and_batch_encoding_match_arkworks() -> None:
    rng = random.Random(2)
    pm, pa = _points(16)
    ks = [rng.randrange(1 << 128) for _ in range(8)]  # short scalars: see mcl.mul_each
    vec = mcl.G1Vec.of(pm)
    mcl.mul_each(vec, 8, 8, ks)  # upper half scaled in place
    mcl.add_halves(vec, 8)  # lower[j] += upper[j]
    expected = [ARK.add(pa[j], ARK.mul(pa[8 + j], ks[j])) for j in range(8)]
    assert mcl.encode_all(vec)[:8] == [ARK.encode(p) for p in expected]


def test_shared_inputs_are_never_written() -> None:
    """mulVec may normalise and mulEach overwrites its input: the backend's
    list operations work on copies, so callers' points never change."""
    fast = get_backend("mcl")
    pm, _ = _points(8)
    before = list(pm)
    fast.msm(pm, list(range(1, 9)))
    fast.mul_each(pm, list(range(1, 9)))
    fast.add_each(pm[:4], pm[4:])
    assert pm == before


def test_non_canonical_infinity_is_refused_before_mcl_sees_it() -> None:
    fast = get_backend("mcl")
    bad = IDENTITY_BYTES[:-1] + b"\x01"  # mcl alone would accept this
    with pytest.raises(FormatError, match="identity"):
        fast.decode(bad, allow_identity=True)
    assert fast.is_identity(fast.decode(IDENTITY_BYTES, allow_identity=True))


def test_wrong_pymcl_version_makes_mcl_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "9.9.9" if name == "pymcl" else real(name))
    with pytest.raises(mcl.MclUnavailable, match="9.9.9 installed"):
        mcl._load()


def test_bounds_are_checked_before_any_c_call() -> None:
    vec = mcl.G1Vec(4)
    with pytest.raises(ValueError):
        mcl.mul_each(vec, 2, 4, mcl.fr_bytes([1] * 4))
    with pytest.raises(ValueError):
        mcl.msm_into(ctypes.create_string_buffer(mcl.G1_RAW), vec, 0, 4, mcl.fr_bytes([1] * 3))
    with pytest.raises(IndexError):
        vec.copy_in(3, vec, 0, 2)


# A point and a 255-bit scalar for which mcl 3.04's vectorised mulEach
# (AVX-512 IFMA) is wrong: 16 copies multiplied at once, lanes 8-15 come out
# wrong, every time. Found by `zksolv bench soak` (seed below, case 1086: the
# first inner-product fold of H with the scalar u/y_1).
MULEACH_X = int("11f6c1f1ea6fbf9ba148f0dbe541089d012a7da7c9a78ed4307989b85e6d6929fdad42be50"
                "b006ecef9faa7e6110a977", 16)
MULEACH_Y = int("06f145359a4dbde990e1633898da6c784c5ce16aee72ed4f038ce363a22385e642302cd861"
                "2e5bdc476251f42747a37e", 16)
MULEACH_K = 0x5C6993D1A4C767AB6D6DA646474D41DEC5DF6C27DF3799F1DB063379116F6399
SOAK_SEED = "d94867bd893c5c7b4b9551e1cd30d41b"


def test_a_full_width_scalar_never_reaches_the_vectorised_multiplication() -> None:
    fast, ark = get_backend("mcl"), get_backend("arkworks")
    (p,) = fast.from_affine_unchecked([(MULEACH_X, MULEACH_Y)])
    (pa,) = ark.from_affine_unchecked([(MULEACH_X, MULEACH_Y)])
    want = ark.encode(ark.mul(pa, MULEACH_K))
    got = fast.mul_each([p] * 16, [MULEACH_K] * 16)
    assert [fast.encode(q) for q in got] == [want] * 16
    with pytest.raises(ValueError, match="not in"):
        mcl.mul_each(mcl.G1Vec.of([p]), 0, 1, [MULEACH_K])
    with pytest.raises(ValueError, match="not in"):
        mcl.mul_each_by(mcl.G1Vec.of([p]), 0, 1, MULEACH_K)
    # short scalars go through as they are, and agree with the reference
    short = [MULEACH_K % (1 << 128), MULEACH_K >> 128, (1 << 128) - 1, 0, 1]
    got = fast.mul_each([p] * 5, short)
    assert [fast.encode(q) for q in got] == [ark.encode(ark.mul(pa, k)) for k in short]


def test_wide_scalars_on_repeated_and_distinct_points_match_arkworks() -> None:
    # MclBackend.mul_each computes 2^128 * P once per distinct point: a mix of
    # one point many times (as commit_many passes h) and others once each
    fast, ark = get_backend("mcl"), get_backend("arkworks")
    rng = random.Random(21)
    tags = [b"a", b"b", b"c"]
    order = [0, 1, 0, 2, 0, 0, 1]
    ks = [rng.randrange(R) for _ in order] + [MULEACH_K, 0, R - 1]
    order += [0, 2, 1]
    pf = [fast.hash_to_curve(t, GENERATOR_DST) for t in tags]
    pa = [ark.hash_to_curve(t, GENERATOR_DST) for t in tags]
    got = fast.mul_each([pf[i] for i in order], ks)
    assert [fast.encode(q) for q in got] == [
        ark.encode(ark.mul(pa[i], k)) for i, k in zip(order, ks, strict=True)]


def test_the_soak_case_that_found_it_now_proves_right() -> None:
    from zksolv.prover import soak

    spec = soak.SoakSpec(seed=bytes.fromhex(SOAK_SEED))
    soak.warm(spec)
    assert soak.run_cases(spec, 1086, 1).faults == []
