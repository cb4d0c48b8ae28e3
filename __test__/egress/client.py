# The sandbox side of __test__/egress.spec.ts: one probe per call, one JSON line out.
#   http URL | https URL CAFILE      urllib through HTTP_PROXY / HTTPS_PROXY (as most clients do)
#   sni HOST PORT SERVERNAME CAFILE  CONNECT HOST:PORT, then TLS with another server name
#   socks IP PORT                    SOCKS5 CONNECT through ALL_PROXY, then read the greeting
#   direct IP PORT                   a plain TCP connect, no proxy
#   dns NAME SERVER                  one A query over UDP
#   raw HOST PORT HEX                send bytes, report what comes back (garbage to the gateway)
import json
import os
import socket
import ssl
import struct
import sys
import urllib.error
import urllib.request


def out(**k):
    print(json.dumps(k))
    sys.exit(0)


def proxy(var):
    hostport = os.environ[var].split('//', 1)[1].rstrip('/')
    h, p = hostport.rsplit(':', 1)
    return h, int(p)


mode = sys.argv[1]
if mode in ('http', 'https'):
    ctx = ssl.create_default_context(cafile=sys.argv[3]) if mode == 'https' else None
    try:
        with urllib.request.urlopen(sys.argv[2], timeout=15, context=ctx) as r:
            out(status=r.status, body=r.read().decode())
    except urllib.error.HTTPError as e:
        out(status=e.code, body=e.read().decode())
    except Exception as e:
        out(error=repr(e))

if mode == 'sni':
    host, port, sni, ca = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    s = socket.create_connection(proxy('HTTPS_PROXY'), timeout=15)
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b''
    while b'\r\n\r\n' not in head:
        d = s.recv(4096)
        if not d:
            break
        head += d
    status = head.split(b' ')[1].decode() if b' ' in head else 'none'
    if status != '200':
        out(connect=status)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the server name is still sent (SNI)
    try:
        t = ctx.wrap_socket(s, server_hostname=sni)
        t.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        body = b''
        while len(body) < 65536:
            d = t.recv(4096)
            if not d:
                break
            body += d
        out(connect=status, body=body.decode(errors='replace'))
    except Exception as e:
        out(connect=status, error=repr(e))

if mode == 'socks':
    ip, port = sys.argv[2], int(sys.argv[3])
    s = socket.create_connection(proxy('ALL_PROXY'), timeout=15)
    s.sendall(b'\x05\x01\x00')
    if s.recv(2) != b'\x05\x00':
        out(reply='no-method')
    s.sendall(b'\x05\x01\x00\x01' + socket.inet_aton(ip) + struct.pack('>H', port))
    r = s.recv(10)
    if len(r) < 2 or r[1] != 0:
        out(reply=r[1] if len(r) > 1 else -1)
    out(reply=0, data=s.recv(100).decode())

if mode == 'direct':
    try:
        socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=3).close()
        out(connected=True)
    except Exception as e:
        out(connected=False, error=repr(e))

if mode == 'dns':
    name, server = sys.argv[2], sys.argv[3]
    q = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0)
    q += b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\0' + struct.pack('>HH', 1, 1)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(q, (server, 53))
    r = u.recv(512)
    rcode, qd, an = r[3] & 15, *struct.unpack('>HH', r[4:8])
    i = 12
    for _ in range(qd):
        while r[i] != 0:
            i += r[i] + 1
        i += 5
    ips = []
    for _ in range(an):
        if r[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while r[i] != 0:
                i += r[i] + 1
            i += 1
        typ, _cls, _ttl, ln = struct.unpack('>HHIH', r[i:i + 10])
        i += 10
        if typ == 1 and ln == 4:
            ips.append(socket.inet_ntoa(r[i:i + 4]))
        i += ln
    out(rcode=rcode, ips=ips)

if mode == 'raw':
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
    s.sendall(bytes.fromhex(sys.argv[4]))
    try:
        out(reply=s.recv(200).decode(errors='replace'))
    except Exception as e:
        out(error=repr(e))

out(error='unknown mode ' + mode)
