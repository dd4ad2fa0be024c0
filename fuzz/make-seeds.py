#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Usage: fuzz/make-seeds.py [EXPORT.zip]   (a `coffer export` archive to seed `archive`)
Seeds are named seed-*; inputs saved from fuzzing runs keep libFuzzer's names.
"""
import io, os, struct, sys, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

PATHS = ["a", "a/b/c.txt", "../x", "a/../b", "/abs", "a//b", "a/b/", ".", "..",
         "CON", "con.txt", "LPT1.log", "COM\u00b9", "a\\b", "%2e%2e", "%2e%2e%2f",
         "%252e%252e%252f", "%c0%ae%c0%ae", "\uff0e\uff0e\uff0f", "name.", "name ", " name",
         "e\u0301t\u00e9", "\u212b", "\u202eexe.txt", "x" * 256, "/".join(["d"] * 300),
         "invoices/2026/März.pdf", "a:b", "50% off.pdf", "\u0000", "tab\tname",
         "Report (final).docx", "\ufb01le"]

def seeds_vault_path():
    for i, p in enumerate(PATHS):
        write("vault_path", f"{i:02}", p)

def seeds_ranges():
    headers = ["bytes=0-9", "bytes=-10", "bytes=990-", "bytes=5-2", "bytes=0-0,5-9",
               "bytes=1000-", "bytes=-0", "bytes=x-y", "items=0-1", "bytes= 3 - 4 ",
               "bytes=0-99999999999999999999", "bytes=-1\n\"nope\"", "bytes=0-1\n*\n",
               "\n\n*", "\n\n\"a\", W/\"b\"", "bytes=10-20\n\"x\"\n\"y\""]
    for i, h in enumerate(headers):
        for sel in (0, 1):
            write("ranges", f"{i:02}-{sel}", bytes([sel, 3, 232]) + h.encode())

def seeds_records():
    docs = [(b'{"a":1,"b":{"c":[1,2]}}', b'{"a":null,"b":{"d":true}}'),
            (b'{"name":"Kunde","n":0.1}', b'{"n":1e308}'),
            (b'{}', b'{"x":{"y":{"z":null}}}'),
            (b'{"a":"\\u0000"}', b'[]'),
            (b'[1,2]', None), (b'"text"', None), (b'{"a":', None),
            (b'{"a":1,"a":2}', b'{"a":{}}'),
            (b'{"deep":' * 80 + b'1' + b'}' * 80, None),
            (b'{"n":18446744073709551616,"m":-0.0}', b'{"m":null}'),
            (b'{"k":"v"}', b'{"k":"\xff"}'),
            (b'{"list":[{"a":1}]}', b'{"list":{"a":2}}')]
    for i, (doc, patch) in enumerate(docs):
        write("records", f"{i:02}", doc + (b"\xff" + patch if patch is not None else b""))

def zip_of(entries, dirs=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for d in dirs:
            z.writestr(zipfile.ZipInfo(d), b"")
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()

def seeds_archive(export):
    write("archive", "plain", zip_of([("notes.txt", b"hello"), ("docs/a.pdf", b"%PDF-1.4")], ["docs/"]))
    write("archive", "traversal", zip_of([("../evil.txt", b"x")]))
    write("archive", "absolute", zip_of([("/etc/evil", b"x")]))
    write("archive", "backslash", zip_of([("a\\..\\..\\evil", b"x")]))
    write("archive", "case-conflict", zip_of([("A.txt", b"1"), ("a.txt", b"2")]))
    write("archive", "duplicate", zip_of([("a.txt", b"1"), ("a.txt", b"2")]))
    write("archive", "file-under-file", zip_of([("a", b"1"), ("a/b", b"2")]))
    write("archive", "bomb", zip_of([("zeros.bin", b"\0" * 2_000_000)]))
    write("archive", "empty-zip", zip_of([]))
    write("archive", "not-zip", b"PK\x03\x04 not really")
    dir_with_data = bytearray(zip_of([("d/", b"data in a directory entry")]))
    write("archive", "dir-with-data", bytes(dir_with_data))
    write("archive", "records-only", zip_of([("records/clients.jsonl", b'{"id":"c1","body":{"name":"A"}}\n{bad\n')]))
    write("archive", "manifest-lies", zip_of([("files/a.txt", b"abc"), ("manifest.json", b'{"format":"coffer-export","entries":[{"path":"files/a.txt","size":9,"sha256":"00"}]}')]))
    if export:
        with open(export, "rb") as f:
            data = f.read()
        write("archive", "coffer-export", data)
        write("archive", "coffer-export-truncated", data[: len(data) // 2])
        flipped = bytearray(data)
        flipped[len(flipped) // 3] ^= 0x40
        write("archive", "coffer-export-flipped", bytes(flipped))

# Route indexes of ROUTES are stable only as long as the table is; seeds cover all.
def seeds_http_app(routes):
    fragments = [b"a.txt", b"..%2f..%2fetc", b"%00", b"@bravo", b"dir/sub/x", b"c1"]
    bodies = [b"{}", b'{"path":"d"}', b'{"from":"a.txt","to":"b.txt"}', b'{"email":"x@y.z","role":"viewer"}', b"PK\x03\x04"]
    for r in range(routes):
        for caller in range(4):
            frag = fragments[(r + caller) % len(fragments)]
            body = bodies[(r * 3 + caller) % len(bodies)]
            query = b"limit=2" if caller == 0 else b"q=%00"
            write("http_app", f"{r:02}-{caller}", bytes([r, caller, r % 6]) + frag + b"\xff" + query + b"\xff" + body + b"\xff" + b"if-match: \"1\"")

seeds_vault_path()
seeds_ranges()
seeds_records()
seeds_archive(sys.argv[1] if len(sys.argv) > 1 else None)
seeds_http_app(52)
