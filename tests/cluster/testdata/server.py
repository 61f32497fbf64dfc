"""HTTP server for the local cluster tests: GET / answers JSON with the pod's identity and
fake-GPU environment, and logs one line per request (checked through `kubectl logs`)."""
import json
import os
import socket
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({
            "hostname": socket.gethostname(),
            "path": self.path,
            "NVIDIA_VISIBLE_DEVICES": os.environ.get("NVIDIA_VISIBLE_DEVICES"),
            "GENCLUSTER_FAKE_GPU": os.environ.get("GENCLUSTER_FAKE_GPU"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"request from {self.client_address[0]}: {fmt % args}", flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"test server listening on :{port}", flush=True)
    HTTPServer(("", port), Handler).serve_forever()
