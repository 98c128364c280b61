#!/usr/bin/env python3
"""A Lambda Invoke API front that throttles: answers HTTP 429 TooManyRequestsException, the
way AWS Lambda does when a function is over its concurrency, and forwards the rest to the
emulator. Two modes:

    throttle_proxy.py --upstream http://127.0.0.1:PORT --every 3 --port-file FILE
        every third invocation is throttled;
    throttle_proxy.py --upstream http://127.0.0.1:PORT --storm 5 --port-file FILE
        a storm: every invocation of a query (by the task's query_id) is throttled, with
        Retry-After: 1, for 5 s from the query's first invocation; then none of it.

Prints nothing; writes the port it listens on (127.0.0.1) to --port-file, and counts throttled
requests in FILE.count.
"""
import argparse, http.server, json, threading, time, urllib.request, urllib.error

parser = argparse.ArgumentParser()
parser.add_argument("--upstream", required=True)
parser.add_argument("--every", type=int, default=3, help="throttle every Nth invocation")
parser.add_argument("--storm", type=float, default=0, help="throttle everything for this many seconds per query")
parser.add_argument("--port-file", required=True)
args = parser.parse_args()
lock = threading.Lock()
state = {"n": 0, "throttled": 0, "storms": {}}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            state["n"] += 1
            now = time.monotonic()
            if args.storm > 0:
                try:
                    query_id = json.loads(body).get("query_id", "")
                except ValueError:
                    query_id = ""
                until = state["storms"].setdefault(query_id, now + args.storm)
                throttle = now < until
            else:
                throttle = state["n"] % args.every == 1
            if throttle:
                state["throttled"] += 1
                open(args.port_file + ".count", "w").write(str(state["throttled"]))
        if throttle:
            payload = b'{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}'
            self.send_response(429)
            self.send_header("x-amzn-ErrorType", "TooManyRequestsException")
            self.send_header("Retry-After", "1")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        request = urllib.request.Request(args.upstream + self.path, data=body, method="POST")
        for key in ("Content-Type", "X-Amz-Invocation-Type", "X-Amz-Log-Type"):
            if self.headers.get(key):
                request.add_header(key, self.headers[key])
        try:
            response = urllib.request.urlopen(request, timeout=900)
            status, headers, payload = response.status, response.headers, response.read()
        except urllib.error.HTTPError as e:
            status, headers, payload = e.code, e.headers, e.read()
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
open(args.port_file, "w").write(str(server.server_address[1]))
server.serve_forever()
