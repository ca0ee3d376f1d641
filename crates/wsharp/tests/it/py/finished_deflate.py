"""Compresses messages the way websocket-sharp and .NET's DeflateStream do: each message is a
complete raw DEFLATE stream (its last block final, zlib's Z_FINISH), optionally followed by
one 0x00 byte. With --context, each stream is primed with the last 32 KiB of the messages before
it (zlib's zdict), so it refers back into them as a sender keeping its context would.

Prints one line per message: the text's UTF-8 in hex, a space, the payload in hex.
Usage: finished_deflate.py [--context] [--extra-zero] [--count N]
"""

import argparse
import random
import zlib

WINDOW = 32 * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--context", action="store_true")
    parser.add_argument("--extra-zero", action="store_true")
    parser.add_argument("--count", type=int, default=30)
    args = parser.parse_args()
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "websocket", "sharp", "frame", "deflate", "µ", "✓"]
    history = b""
    out = []
    for n in range(args.count):
        size = rng.choice([0, 1, 10, 200, 5000, 70000])
        text = " ".join(rng.choice(words) for _ in range(size // 6 + 1))[:size] if size else ""
        # Cut on a character boundary.
        data = text.encode("utf-8")
        text = data.decode("utf-8", errors="ignore")
        data = text.encode("utf-8")
        if args.context and history:
            c = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, history[-WINDOW:])
        else:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = c.compress(data) + c.flush(zlib.Z_FINISH)
        if args.extra_zero:
            payload += b"\x00"
        # The stream really ends with a final block: a fresh inflater stops at its end.
        d = zlib.decompressobj(-15, history[-WINDOW:]) if args.context and history else zlib.decompressobj(-15)
        if d.decompress(payload) != data or not d.eof:
            raise SystemExit(f"message {n}: the stream does not end with a final block")
        history += data
        out.append(f"{data.hex()} {payload.hex()}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
