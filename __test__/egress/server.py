# A test host for __test__/egress.spec.ts and bench/egress.ts, run in a container the test creates
# on its own network: HTTP on 8080, HTTPS on 8443 (the test's certificate), and two raw TCP
# greeters on 9000 and 9001 (HTTPS only when /srv has server.crt and server.key). GET /big?mb=N streams N MiB of zeros (for the throughput bench).
import http.server
import os
import socket
import socketserver
import ssl
import sys
import threading
import urllib.parse

NAME = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == '/big':
            mb = int(urllib.parse.parse_qs(url.query).get('mb', ['1'])[0])
            self.send_response(200)
            self.send_header('Content-Length', str(mb << 20))
            self.end_headers()
            chunk = b'\0' * (1 << 20)
            for _ in range(mb):
                self.wfile.write(chunk)
            return
        body = f"hello {NAME} host={self.headers.get('Host')} path={self.path}\n".encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def greeter(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(f"tcp-{port}-{NAME}\n".encode())
        finally:
            c.close()


class TlsServer(Server):
    def __init__(self, addr, handler, ctx):
        super().__init__(addr, handler)
        self.ctx = ctx

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(10)
        try:
            return self.ctx.wrap_socket(sock, server_side=True), addr
        except Exception:
            sock.close()
            raise


for p in (9000, 9001):
    threading.Thread(target=greeter, args=(p,), daemon=True).start()
if os.path.exists('/srv/server.crt'):  # the test's certificate; the bench has none
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain('/srv/server.crt', '/srv/server.key')
    tls = TlsServer(('0.0.0.0', 8443), Handler, ctx)
    threading.Thread(target=tls.serve_forever, daemon=True).start()
print('ready', flush=True)
Server(('0.0.0.0', 8080), Handler).serve_forever()
