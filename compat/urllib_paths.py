"""Reads request targets, one per line, from stdin and prints, as JSON,
the path each one names for a Python server: urllib.parse.urlsplit, then
percent-decoding once (urllib.parse.unquote_to_bytes), then
posixpath.normpath (a trailing slash kept). Paths are printed as hex of
their bytes, since they need not be UTF-8."""
import json
import posixpath
import sys
import urllib.parse

out = []
for line in sys.stdin.read().split("\n"):
    if not line:
        continue
    path = urllib.parse.urlsplit(line).path
    raw = urllib.parse.unquote_to_bytes(path)
    norm = posixpath.normpath(raw) if raw else b""
    if raw.endswith(b"/") and norm != b"/" and norm:
        norm += b"/"
    out.append(norm.hex())
json.dump(out, sys.stdout)
