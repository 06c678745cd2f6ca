#!/usr/bin/env python3
"""Writes the small image fixtures of the ImageDecoder tests into
Tests/LeNetKitTests/Fixtures/images/ with the standard library only (zlib, struct): PNGs
of every colour type, bit depth, palette, transparency and Adam7 interlacing; PGM/PPM;
malformed files. expected.json gives, per decodable file, its width, height and the 8-bit
grey levels ImageDecoder should return (within 1).

Every picture is the same 13x11 pattern of four levels (0 black ... 3 white): a dark
digit-like stroke on a light background with some mid greys. Files that can only hold
two levels (1-bit, 16-bit where libpng's gamma handling makes mid greys ambiguous) use
the pattern with levels 0-1 -> black and 2-3 -> white.

Run: python3 Scripts/make_image_fixtures.py
"""
import json, os, struct, zlib

W, H = 13, 11
OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LeNetKitTests", "Fixtures", "images")


def level(x, y):
    if 3 <= x <= 4 and 1 <= y <= 9: return 0          # vertical stroke
    if 4 <= x <= 9 and 1 <= y <= 2: return 0          # top bar
    if (x, y) in ((8, 5), (9, 6)): return 1
    if (x + 2 * y) % 7 == 0: return 2
    return 3


LEVELS = [[level(x, y) for x in range(W)] for y in range(H)]
TWO = [[0 if v < 2 else 3 for v in row] for row in LEVELS]


def grey8(levels):
    return [v * 85 for row in levels for v in row]


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """One scanline of samples (ints) at bit depth `depth`, with filter byte 0."""
    if depth == 16:
        return b"\0" + b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return b"\0" + bytes(samples)
    out, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        bits += depth
        if bits == 8:
            out.append(acc); acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return b"\0" + bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(pixels, depth, colour_type, interlace=False, palette=None, trns=None):
    """pixels: rows of tuples of samples per pixel (1 for grey/palette, 2 GA, 3 RGB, 4 RGBA)."""
    raw = b""
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            for y in range(y0, H, dy):
                row = [s for x in range(x0, W, dx) for s in pixels[y][x]]
                if row:
                    raw += pack_row(row, depth)
    else:
        for y in range(H):
            raw += pack_row([s for p in pixels[y] for s in p], depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, depth, colour_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        data += chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return data


def main():
    os.makedirs(OUT, exist_ok=True)
    files, expected = {}, {}

    def add(name, data, levels=None, grey=None):
        files[name] = data
        if levels is not None or grey is not None:
            expected[name] = {"width": W, "height": H, "grey": grey if grey is not None else grey8(levels)}

    def scaled(levels, depth):
        top = (1 << depth) - 1
        return [[(v * top // 3,) for v in row] for row in levels]

    # Colour type 0: grey at every depth.
    add("gray1.png", png([[(v // 3,) for v in row] for row in TWO], 1, 0), TWO)
    add("gray2.png", png(scaled(LEVELS, 2), 2, 0), LEVELS)
    add("gray4.png", png(scaled(LEVELS, 4), 4, 0), LEVELS)
    add("gray8.png", png(scaled(LEVELS, 8), 8, 0), LEVELS)
    add("gray16.png", png(scaled(TWO, 16), 16, 0), TWO)
    # Grey with tRNS: the white background transparent, black ink opaque.
    add("gray8-trns.png", png(scaled(TWO, 8), 8, 0, trns=struct.pack(">H", 255)), TWO)
    # Colour type 2: RGB with equal channels.
    add("rgb8.png", png([[(v * 85,) * 3 for v in row] for row in LEVELS], 8, 2), LEVELS)
    add("rgb16.png", png([[(v // 3 * 65535,) * 3 for v in row] for row in TWO], 16, 2), TWO)
    # Colour type 3: palettes of 1, 2, 4 and 8 bits (entries in reverse order).
    grey_palette = [(255 - i * 85,) * 3 for i in range(4)]
    for depth in (2, 4, 8):
        add(f"palette{depth}.png", png([[(3 - v,) for v in row] for row in LEVELS], depth, 3, palette=grey_palette), LEVELS)
    add("palette1.png", png([[(1 - v // 3,) for v in row] for row in TWO], 1, 3, palette=[(255, 255, 255), (0, 0, 0)]), TWO)
    # Palette with transparency: entry 0 (white) fully transparent.
    add("palette4-trns.png", png([[(3 - v,) for v in row] for row in LEVELS], 4, 3, palette=grey_palette, trns=bytes([0])), LEVELS)
    # Colour type 4: black ink in the alpha channel, composited over white.
    add("ga8.png", png([[(0, 255 - v * 85) for v in row] for row in LEVELS], 8, 4), LEVELS)
    add("ga16.png", png([[(0, 65535 - v // 3 * 65535) for v in row] for row in TWO], 16, 4), TWO)
    # Colour type 6: white ink on transparent black, composited over black: the inverse.
    inverse = [[3 - v for v in row] for row in LEVELS]
    add("rgba8.png", png([[(255, 255, 255, 255 - v * 85) for v in row] for row in LEVELS], 8, 6), inverse)
    add("rgba16.png", png([[(65535,) * 3 + (65535 - v // 3 * 65535,) for v in row] for row in TWO], 16, 6),
        [[3 - v for v in row] for row in TWO])
    # Adam7 interlaced.
    add("gray1-interlaced.png", png([[(v // 3,) for v in row] for row in TWO], 1, 0, interlace=True), TWO)
    add("gray8-interlaced.png", png(scaled(LEVELS, 8), 8, 0, interlace=True), LEVELS)
    add("palette4-interlaced.png", png([[(3 - v,) for v in row] for row in LEVELS], 4, 3, interlace=True, palette=grey_palette), LEVELS)
    add("rgba8-interlaced.png", png([[(255, 255, 255, 255 - v * 85) for v in row] for row in LEVELS], 8, 6, interlace=True), inverse)
    add("rgb16-interlaced.png", png([[(v // 3 * 65535,) * 3 for v in row] for row in TWO], 16, 2, interlace=True), TWO)

    # PGM / PPM.
    g = grey8(LEVELS)
    add("plain.pgm", f"P2\n# a comment\n{W} {H}\n255\n".encode() + "\n".join(
        " ".join(str(v) for v in g[y * W:(y + 1) * W]) for y in range(H)).encode() + b"\n", LEVELS)
    add("binary.pgm", f"P5 {W}\n{H} # comment in the header\n255\n".encode() + bytes(g), LEVELS)
    add("binary16.pgm", f"P5\n{W} {H}\n65535\n".encode() + b"".join(struct.pack(">H", v * 257) for v in g), LEVELS)
    add("maxval3.pgm", f"P5\n{W} {H}\n3\n".encode() + bytes(v for row in LEVELS for v in row), LEVELS)
    add("plain.ppm", f"P3\n{W} {H}\n255\n".encode() + " ".join(f"{v} {v} {v}" for v in g).encode() + b"\n", LEVELS)
    add("binary.ppm", f"P6\n{W} {H}\n255\n".encode() + bytes(v for v in g for _ in range(3)), LEVELS)

    # Malformed.
    good = files["gray8.png"]
    idat = good.index(b"IDAT")
    add("bad-truncated.png", good[: idat + 20])
    broken = bytearray(good); broken[idat + 10] ^= 0xFF  # IDAT CRC no longer matches
    add("bad-crc.png", bytes(broken))
    add("bad-signature.png", b"\x89PNX" + good[4:])
    add("bad-header-only.png", good[:8])
    huge = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10000, 10000, 8, 0, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    add("bad-oversized.png", huge)
    add("bad-truncated.pgm", f"P5\n{W} {H}\n255\n".encode() + bytes(g[:50]))
    add("bad-maxval.pgm", f"P2\n{W} {H}\n0\n".encode() + b"0 " * (W * H))
    add("bad-sample.pgm", f"P2\n2 1\n10\n3 11\n".encode())
    add("bad-text.pgm", b"hello, this is not an image\n")
    add("bad-bitmap.pbm", b"P1\n2 2\n0 1 1 0\n")
    add("bad-empty.png", b"")

    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")
    print(f"wrote {len(files)} files and expected.json into {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
