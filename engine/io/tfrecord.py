"""TFRecord files of ``tf.train.Example`` protos, read and written without TensorFlow.

Only what MeshGraphNets' datasets use: each record is an Example whose features are bytes lists.
Framing per record: uint64 length, masked CRC-32C of the length, the data, masked CRC-32C of the
data (all little-endian). Both checksums are verified, so a corrupt download fails loudly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import crc32c

from engine.errors import DataFormatError

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC-32C (a rotation plus a constant, so CRCs of CRCs stay well mixed)."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def read_records(path: str | Path) -> Iterator[bytes]:
    """Yield each record's payload, checking both CRCs; errors name the file and the record."""
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot open TFRecord file ({exc.strerror})") from None
    with f:
        index = 0
        while header := f.read(12):
            if len(header) < 12:
                raise DataFormatError(f"{path.name}: truncated header of record {index}")
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc(header[:8]) != length_crc:
                raise DataFormatError(f"{path.name}: wrong length checksum in record {index}")
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise DataFormatError(f"{path.name}: record {index} is truncated")
            if masked_crc(data) != struct.unpack("<I", footer)[0]:
                raise DataFormatError(f"{path.name}: wrong data checksum in record {index}")
            yield data
            index += 1


def write_records(path: str | Path, records: Iterable[bytes]) -> Path:
    path = Path(path)
    with path.open("wb") as f:
        for data in records:
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc(length)))
            f.write(data)
            f.write(struct.pack("<I", masked_crc(data)))
    return path


# --- protobuf wire format, just enough for Example -> Features -> map<string, Feature> ---------

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end of the message")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _len_fields(buf: memoryview) -> Iterator[tuple[int, memoryview]]:
    """(field number, payload) of each length-delimited field; other wire types are skipped."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, pos = _varint(buf, pos)
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("a field runs past the end of the message")
            yield number, buf[pos : pos + size]
            pos += size
        elif wire in (_FIXED64, _FIXED32):
            pos += 8 if wire == _FIXED64 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    if pos != len(buf):
        raise ValueError("message ends inside a field")


_FEATURE_KINDS = {1: "bytes_list", 2: "float_list", 3: "int64_list"}


def parse_example(data: bytes) -> dict[str, list[bytes]]:
    """Feature name -> its bytes values. Raises ValueError on malformed protos or features that
    are float/int64 lists (MeshGraphNets stores every array as raw bytes)."""
    features: dict[str, list[bytes]] = {}
    for n_example, feats in _len_fields(memoryview(data)):
        if n_example != 1:  # Example.features
            continue
        for n_features, entry in _len_fields(feats):
            if n_features != 1:  # Features.feature, a map<string, Feature> entry
                continue
            name, values = "", []
            for n_entry, payload in _len_fields(entry):
                if n_entry == 1:
                    name = bytes(payload).decode()
                elif n_entry == 2:
                    for kind, kind_list in _len_fields(payload):
                        if kind != 1:
                            raise ValueError(f"feature is a {_FEATURE_KINDS.get(kind, kind)}")
                        values = [bytes(v) for n, v in _len_fields(kind_list) if n == 1]
            features[name] = values
    return features


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _key(number, _LEN) + _encode_varint(len(payload)) + payload


def encode_example(features: dict[str, list[bytes]]) -> bytes:
    """The serialised ``tf.train.Example`` with each feature as a bytes list."""
    entries = b""
    for name, values in features.items():
        bytes_list = b"".join(_len_field(1, v) for v in values)
        feature = _len_field(1, bytes_list)
        entries += _len_field(1, _len_field(1, name.encode()) + _len_field(2, feature))
    return _len_field(1, entries)
