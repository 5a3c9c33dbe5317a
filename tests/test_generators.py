"""Generators: the pinned chunk digests are what hash-to-curve gives, and
the cache is used only when it proves to hold exactly those points."""

from __future__ import annotations

from pathlib import Path

import pytest

from zksolv import gencache
from zksolv.core import generators as gm
from zksolv.core import mcl
from zksolv.core.group import P, get_backend

FAST = get_backend("mcl" if mcl.available() else "arkworks")


def test_every_pinned_chunk_is_what_hash_to_curve_gives() -> None:
    assert len(gm.PINNED_CHUNK_DIGESTS) == 32
    assert gm.chunk_digests(FAST, 32) == list(gm.PINNED_CHUNK_DIGESTS)


def test_first_pinned_chunk_on_the_reference_backend() -> None:
    assert gm.chunk_digests(get_backend("arkworks"), 1) == [gm.PINNED_CHUNK_DIGESTS[0]]


def test_compressed_from_affine_is_the_backend_encoding() -> None:
    for name in ("arkworks", "py_ecc") + (("mcl",) if mcl.available() else ()):
        be = get_backend(name)
        pts = [be.hash_to_curve(bytes([i]), gm.GENERATOR_DST) for i in range(4)]
        assert [gm.compressed_from_affine(x, y) for x, y in be.to_affine(pts)] == [
            be.encode(p) for p in pts
        ]
        assert [be.encode(p) for p in be.from_affine_unchecked(be.to_affine(pts))] == [
            be.encode(p) for p in pts
        ]


def _fresh(name: str, n: int) -> list[bytes]:
    be = get_backend(name)
    G, H = gm.GeneratorSet(be).vectors(n)
    return [be.encode(p) for p in (*G[:n], *H[:n])]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(gencache.CACHE_ENV, str(tmp_path))
    gencache.install()
    yield tmp_path
    gm.set_chunk_store(None)


def _load(c: int) -> list[tuple[int, int]] | None:
    raw = gencache.FileChunkStore(gencache.cache_dir()).load(c)  # type: ignore[arg-type]
    return None if raw is None else gm.parse_chunk(c, raw)


def _forbid_derivation(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    be = get_backend(name)
    derive = be.hash_to_curve

    def refuse(msg: bytes, dst: bytes) -> object:
        if msg[:1] in (b"G", b"H") and len(msg) == 5:
            raise AssertionError("derived a vector generator although the cache held it")
        return derive(msg, dst)

    monkeypatch.setattr(get_backend(name), "hash_to_curve", refuse)


def test_a_derived_chunk_is_cached_and_then_loaded(cache: Path, monkeypatch) -> None:
    expected = _fresh(FAST.name, gm.CHUNK)
    path = cache / "generators-v1-0000.bin"
    assert path.stat().st_size == 2 * gm.CHUNK * 96
    _forbid_derivation(monkeypatch, "arkworks")
    # the cache is backend-neutral: arkworks loads what mcl wrote
    assert _fresh("arkworks", gm.CHUNK) == expected


def _tamper(path: Path, how: str) -> None:
    raw = bytearray(path.read_bytes())
    if how == "flip-x":
        raw[100] ^= 1
    elif how == "negate-y":  # still on the curve; the pinned sign bit differs
        y = int.from_bytes(raw[96 + 48 : 192], "big")
        raw[96 + 48 : 192] = (P - y).to_bytes(48, "big")
    elif how == "swap":  # G[0] and H[0] exchanged: every point valid, order wrong
        raw[0:96], raw[96:192] = raw[96:192], raw[0:96]
    elif how == "truncate":
        del raw[-1]
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["flip-x", "negate-y", "swap", "truncate"])
def test_a_tampered_cache_is_ignored_and_the_chunk_derived_again(cache: Path, how: str) -> None:
    expected = _fresh(FAST.name, gm.CHUNK)
    path = cache / "generators-v1-0000.bin"
    _tamper(path, how)
    assert _load(0) is None
    assert _fresh(FAST.name, gm.CHUNK) == expected
    # and the derivation rewrote a good file
    assert _load(0) is not None


def test_cache_off_never_touches_the_disk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(gencache.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    gencache.install()
    _fresh(FAST.name, gm.CHUNK)
    assert not any(tmp_path.iterdir())


def test_the_core_alone_does_no_io(tmp_path: Path, monkeypatch) -> None:
    gm.set_chunk_store(None)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(gencache.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    _fresh(FAST.name, gm.CHUNK)
    assert not any(tmp_path.iterdir())


def test_a_fifo_or_a_symlink_in_the_cache_is_never_read(cache: Path) -> None:
    import os

    store = gencache.FileChunkStore(cache)
    os.mkfifo(store.path(0))
    assert store.load(0) is None  # returns at once: no hang on a FIFO
    os.unlink(store.path(0))
    (cache / "elsewhere.bin").write_bytes(bytes(gm.CHUNK_BYTES))
    os.symlink(cache / "elsewhere.bin", store.path(0))
    assert store.load(0) is None


def test_derivation_is_reported_chunk_by_chunk(cache: Path) -> None:
    """What a progress bar is told: a cold cache, (0, N) before the first
    chunk and (i, N) after each; a warm one, nothing; a cache with a hole,
    the chunks from the hole on (the cached ones after it count as steps)."""
    calls: list[tuple[int, int]] = []

    def hear(done: int, total: int) -> None:
        calls.append((done, total))

    n = 3 * gm.CHUNK
    G, H = gm.GeneratorSet(FAST).vectors(n, on_derive=hear)
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    want = [FAST.encode(p) for p in (*G[:n], *H[:n])]
    calls.clear()
    G, H = gm.GeneratorSet(FAST).vectors(n, on_derive=hear)
    assert calls == [] and [FAST.encode(p) for p in (*G[:n], *H[:n])] == want
    gencache.FileChunkStore(cache).path(1).unlink()
    G, H = gm.GeneratorSet(FAST).vectors(n, on_derive=hear)
    assert calls == [(0, 2), (1, 2), (2, 2)]
    assert [FAST.encode(p) for p in (*G[:n], *H[:n])] == want
    calls.clear()
    G, H = gm.GeneratorSet(FAST).vectors(n + 64, on_derive=hear)  # part of a chunk
    assert calls == [(0, 1), (1, 1)] and len(G) == n + 64
