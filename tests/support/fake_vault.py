"""A small stand-in for HashiCorp Vault's KV version 2 HTTP API, for tests only.

It answers as the Vault API documentation describes for the calls the agent makes:
GET/POST /v1/{mount}/data/{path}, LIST (or GET ?list=true) and DELETE /v1/{mount}/metadata/{path}.
Every request must carry `X-Vault-Token: <token>` and `X-Vault-Request: true`. While the file
named by the second argument exists, every request is answered 503 (Vault sealed or down).
Prints the port it listens on (127.0.0.1), then serves until killed.
"""
import datetime
import http.server
import json
import os
import sys
import urllib.parse

TOKEN = sys.argv[1]
OUTAGE = sys.argv[2]
MOUNT = "secret"
STORE = {}  # path -> list of {"data": {...}, "created_time": str}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, code, body=None):
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def route(self):
        if os.path.exists(OUTAGE):
            self.send(503, {"errors": ["Vault is sealed"]})
            return None
        if self.headers.get("X-Vault-Token") != TOKEN:
            self.send(403, {"errors": ["permission denied"]})
            return None
        if self.headers.get("X-Vault-Request") != "true":
            self.send(400, {"errors": ["missing X-Vault-Request header"]})
            return None
        url = urllib.parse.urlparse(self.path)
        prefix = f"/v1/{MOUNT}/"
        if not url.path.startswith(prefix):
            self.send(404, {"errors": []})
            return None
        kind, _, path = url.path[len(prefix):].partition("/")
        return kind, path, urllib.parse.parse_qs(url.query)

    def do_GET(self):
        r = self.route()
        if r is None:
            return
        kind, path, query = r
        if kind == "metadata" and query.get("list") == ["true"]:
            return self.list(path)
        versions = STORE.get(path)
        if kind != "data" or not versions:
            return self.send(404, {"errors": []})
        n = int(query.get("version", [len(versions)])[0])
        if n < 1 or n > len(versions):
            return self.send(404, {"errors": []})
        v = versions[n - 1]
        self.send(200, {"data": {"data": v["data"], "metadata": {"version": n, "created_time": v["created_time"],
                                                                  "deletion_time": "", "destroyed": False}}})

    def do_LIST(self):
        r = self.route()
        if r is not None:
            self.list(r[1])

    def list(self, prefix):
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        keys = sorted({p[len(prefix):].split("/")[0] + ("/" if "/" in p[len(prefix):] else "")
                       for p in STORE if p.startswith(prefix)})
        if not keys:
            return self.send(404, {"errors": []})
        self.send(200, {"data": {"keys": keys}})

    def do_POST(self):
        r = self.route()
        if r is None:
            return
        kind, path, _ = r
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if kind != "data" or "data" not in body:
            return self.send(400, {"errors": ["no data provided"]})
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        STORE.setdefault(path, []).append({"data": body["data"], "created_time": now})
        self.send(200, {"data": {"version": len(STORE[path]), "created_time": now, "deletion_time": "", "destroyed": False}})

    def do_DELETE(self):
        r = self.route()
        if r is None:
            return
        kind, path, _ = r
        if kind != "metadata":
            return self.send(400, {"errors": ["unsupported"]})
        STORE.pop(path, None)
        self.send(204)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
