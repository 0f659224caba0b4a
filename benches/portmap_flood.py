#!/usr/bin/env python3
"""The port mapper under two floods (issue 13's report), against the release binary:

    cargo build --release -p erlangen-portmap
    python3 benches/portmap_flood.py target/release/erlangen-port-mapper

1. Listing flood: 1,024 names of 255 bytes registered, then 1,030 connections that each
   read one NAMES listing and stay open; prints the daemon's RSS before and its peak.
2. Log flood: 10,000 connections refused (Busy) by a daemon bound to 16 connections;
   prints the bytes and lines it logged. Loopback only; bounded in count.
"""
import resource, socket, struct, subprocess, sys, time

BIN = sys.argv[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
def frame(kind, body): return struct.pack('<II', kind, len(body)) + body
def recvall(s, n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
def read_frame(s):
    kind, ln = struct.unpack('<II', recvall(s, 8))
    return kind, recvall(s, ln)
def start(extra):
    p = subprocess.Popen([BIN, '--listen', '127.0.0.1:0'] + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    host, port = line.strip().rsplit(' ', 1)[1].split(':')
    return p, (host, int(port))
def status(p, key):
    for l in open(f'/proc/{p.pid}/status'):
        if l.startswith(key): return int(l.split()[1])
# 1. listing flood
p, addr = start(['--max-connections', '3000'])
regs = []
for i in range(1024):
    s = socket.create_connection(addr); read_frame(s)
    name = (f'{i:04d}' + 'x' * 251).encode()
    s.sendall(frame(0x10, struct.pack('<I', len(name)) + name + struct.pack('<I', 1000 + i)))
    k, _ = read_frame(s); assert k == 0x02, k
    regs.append(s)
base = status(p, 'VmRSS:')
listers = []
for i in range(1030):
    s = socket.create_connection(addr); read_frame(s)
    s.sendall(frame(0x22, b''))
    k, body = read_frame(s); assert k == 0x23
    listers.append(s)
time.sleep(0.5)
print(f'listing flood: reply {len(body)} bytes; daemon RSS {base} KiB before the listings, {status(p, "VmRSS:")} KiB after 1,030 listings held open, peak {status(p, "VmHWM:")} KiB')
for s in listers + regs: s.close()
p.terminate(); p.wait()
# 2. log bytes per 10,000 refused connections
p, addr = start(['--max-connections', '16'])
held = [socket.create_connection(addr) for _ in range(16)]
for s in held: read_frame(s)
t0 = time.time()
for i in range(10000):
    s = socket.create_connection(addr)
    try: read_frame(s)
    except EOFError: pass
    s.close()
p.terminate(); _, err = p.communicate()
print(f'log flood: 10,000 refused connections in {time.time()-t0:.1f} s wrote {len(err.encode())} bytes in {len(err.splitlines())} lines of log')
