#!/usr/bin/env python3
"""Writes an MNIST test digit as the draw-a-digit page sends it: a 280x280 RGBA PNG,
black ink on white, each MNIST pixel a 10x10 block. Prints the digit's label.

usage: make_digit_png.py MNIST_DIR INDEX OUT.png   (standard library only)
"""
import struct
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from reference.mnist import IMAGES_MAGIC, LABELS_MAGIC, find, read  # noqa: E402


def png(width: int, height: int, rows: list) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> None:
    directory, index, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    try:
        _, images = read(find(directory, "t10k-images-idx3-ubyte"), IMAGES_MAGIC)
        _, labels = read(find(directory, "t10k-labels-idx1-ubyte"), LABELS_MAGIC)
    except (OSError, ValueError) as error:
        sys.exit(str(error))
    pixels = images[index * 784: (index + 1) * 784]
    rows = []
    for y in range(280):
        row = bytearray()
        for x in range(280):
            grey = 255 - pixels[(y // 10) * 28 + x // 10]
            row += bytes((grey, grey, grey, 255))
        rows.append(bytes(row))
    out.write_bytes(png(280, 280, rows))
    print(labels[index])


if __name__ == "__main__":
    main()
