"""MeshGraphNets TFRecord datasets: framing, checksums, Example protos, meta.json → Trajectory."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.io.meshgraphnets import read_meshgraphnets, write_meshgraphnets
from engine.io.tfrecord import (
    encode_example,
    masked_crc,
    parse_example,
    read_records,
    write_records,
)


def make_trajectory(seed: int, steps: int = 4) -> Trajectory:
    rng = np.random.default_rng(seed)
    n = 7 + seed
    return Trajectory(
        mesh_pos=rng.random((n, 2)).astype(np.float32).astype(np.float64),
        cells=rng.integers(0, n, size=(2 * n, 3)),
        node_type=rng.choice([0, 4, 5, 6], size=n),
        velocity=rng.standard_normal((steps, n, 2)).astype(np.float32),
        pressure=rng.standard_normal((steps, n)).astype(np.float32),
        time=np.zeros(steps),
        forces=np.zeros((steps, 0, 2)),
        coefficients=np.zeros((steps, 0, 2)),
    )


def test_masked_crc_matches_tensorflow_definition() -> None:
    crc = 0xE3069283  # CRC-32C of "123456789", the standard check value
    assert masked_crc(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_records_and_examples_round_trip(tmp_path: Path) -> None:
    examples = [{"a": [b"\x00\x01" * 300]}, {"b": [b"", b"xyz"], "name": [b"long" * 5000]}]
    path = write_records(tmp_path / "x.tfrecord", [encode_example(e) for e in examples])
    assert [parse_example(r) for r in read_records(path)] == examples
    # the framing: length, its masked CRC, data, its masked CRC
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert struct.unpack("<I", raw[8:12])[0] == masked_crc(raw[:8])
    assert struct.unpack("<I", raw[12 + length : 16 + length])[0] == masked_crc(
        raw[12 : 12 + length]
    )


def test_meshgraphnets_dataset_imports(tmp_path: Path) -> None:
    originals = [make_trajectory(0), make_trajectory(1)]
    write_meshgraphnets(tmp_path, "valid", originals, dt=0.02)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["features"]["velocity"] == {
        "type": "dynamic",
        "shape": [4, -1, 2],
        "dtype": "float32",
    }
    assert meta["features"]["cells"]["dtype"] == "int32"

    imported = list(read_meshgraphnets(tmp_path, "valid"))
    assert len(imported) == 2
    for original, got in zip(originals, imported, strict=True):
        np.testing.assert_array_equal(got.mesh_pos, original.mesh_pos)
        np.testing.assert_array_equal(got.cells, original.cells)
        np.testing.assert_array_equal(got.node_type, original.node_type)
        np.testing.assert_array_equal(got.velocity, original.velocity)
        np.testing.assert_array_equal(got.pressure, original.pressure)
        np.testing.assert_allclose(got.time, [0.0, 0.02, 0.04, 0.06])
    assert len(list(read_meshgraphnets(tmp_path, "valid", limit=1))) == 1

    saved = imported[1].save(tmp_path / "one.h5")
    np.testing.assert_array_equal(Trajectory.load(saved).velocity, originals[1].velocity)


def test_default_dt_and_static_shapes_from_meta(tmp_path: Path) -> None:
    write_meshgraphnets(tmp_path, "train", [make_trajectory(2)])
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["dt"]
    meta_path.write_text(json.dumps(meta))
    (got,) = read_meshgraphnets(tmp_path)
    np.testing.assert_allclose(got.time, [0.0, 0.01, 0.02, 0.03])
    assert got.node_type.shape == (9,)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: raw[:-3], "record 1 is truncated"),
        (lambda raw: raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:], "wrong data checksum in record 1"),
        (lambda raw: raw[:9] + bytes([raw[9] ^ 1]) + raw[10:], "wrong length checksum in record 0"),
        (lambda raw: raw + b"\x01\x02", "truncated header of record 2"),
    ],
)
def test_broken_files_name_the_file_and_problem(tmp_path: Path, damage, message: str) -> None:
    path = write_meshgraphnets(tmp_path, "test", [make_trajectory(0), make_trajectory(1)])
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataFormatError, match=f"test.tfrecord: {message}"):
        list(read_meshgraphnets(tmp_path, "test"))


def test_missing_feature_and_wrong_shape(tmp_path: Path) -> None:
    write_meshgraphnets(tmp_path, "train", [make_trajectory(0)])
    record = parse_example(next(read_records(tmp_path / "train.tfrecord")))
    del record["pressure"]
    write_records(tmp_path / "train.tfrecord", [encode_example(record)])
    with pytest.raises(
        DataFormatError, match=r"train.tfrecord record 0: missing feature\(s\) pressure"
    ):
        list(read_meshgraphnets(tmp_path))

    record["pressure"] = [b"\x00" * 12]  # 3 floats cannot be [4, -1, 1]
    write_records(tmp_path / "train.tfrecord", [encode_example(record)])
    with pytest.raises(DataFormatError, match="pressure has 3 values"):
        list(read_meshgraphnets(tmp_path))


def test_missing_meta_and_split(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"meta\.json: no such file"):
        list(read_meshgraphnets(tmp_path))
    write_meshgraphnets(tmp_path, "train", [make_trajectory(0)])
    with pytest.raises(
        DataFormatError, match=r"test.tfrecord: no such split file \(found: train\)"
    ):
        list(read_meshgraphnets(tmp_path, "test"))
    (tmp_path / "meta.json").write_text('{"features": {}}')
    with pytest.raises(DataFormatError, match="no mesh_pos, cells"):
        list(read_meshgraphnets(tmp_path))


def test_non_bytes_features_are_rejected() -> None:
    def field(number: int, payload: bytes) -> bytes:  # a length-delimited protobuf field
        return bytes([number << 3 | 2, len(payload)]) + payload

    float_list = field(1, struct.pack("<f", 1.0))  # FloatList.value, packed
    entry = field(1, b"x") + field(2, field(2, float_list))  # name "x" -> Feature.float_list
    with pytest.raises(ValueError, match="feature is a float_list"):
        parse_example(field(1, field(1, entry)))


def test_import_command_writes_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "cylinder_flow"
    write_meshgraphnets(source, "train", [make_trajectory(k) for k in range(3)])
    out = tmp_path / "dataset"
    assert main(["import", str(source), "-o", str(out), "--split", "train"]) == 0
    assert sorted(p.name for p in out.glob("*.h5")) == [f"train_{k:05d}.h5" for k in range(3)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 3
    np.testing.assert_array_equal(
        Trajectory.load(out / "train_00002.h5").velocity, make_trajectory(2).velocity
    )

    assert main(["import", str(source), "-o", str(tmp_path / "one.h5"), "--limit", "1"]) == 0
    assert Trajectory.load(tmp_path / "one.h5").num_nodes == 7
    assert main(["import", str(source), "-o", str(tmp_path / "two.h5")]) == 2
    assert "several trajectories" in capsys.readouterr().err
