#!/usr/bin/env python3
"""A tiny SMTP submission responder that fails every AUTH, and its attacker.

usage:
  smtp.py serve LOG PORT          listen on PORT (IPv4 and IPv6); for each
                                  connection append Postfix-style lines to LOG:
                                  connect, `SASL LOGIN authentication failed`
                                  after an AUTH LOGIN exchange, disconnect
  smtp.py auth HOST PORT [COUNT]  COUNT (default 1) connections that each try
                                  AUTH LOGIN once; exit 0 if every one got 535
  smtp.py probe HOST PORT [SECS]  exit 0 if a TCP connection opens and the
                                  banner arrives within SECS (default 2)

The log lines carry Debian 12's RFC 3339 syslog stamps, host `mail`, and the
peer's address as Postfix prints it (`unknown[ADDR]`).
"""
import base64
import datetime
import os
import socket
import socketserver
import sys
import threading

HOST = "mail"
LOCK = threading.Lock()


def log_line(path, pid, msg):
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="microseconds")
    with LOCK, open(path, "a") as f:
        f.write(f"{stamp} {HOST} postfix/submission/smtpd[{pid}]: {msg}\n")


def peer_addr(addr):
    a = addr[0]
    return a[7:] if a.startswith("::ffff:") else a


class Session(socketserver.StreamRequestHandler):
    timeout = 10

    def send(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def recv(self):
        line = self.rfile.readline(1024)
        if not line:
            raise EOFError
        return line.decode(errors="replace").strip()

    def handle(self):
        path = self.server.log_path
        ip = peer_addr(self.client_address)
        pid = os.getpid() * 10 + threading.get_ident() % 10
        log_line(path, pid, f"connect from unknown[{ip}]")
        cmds = {"ehlo": 0, "auth": 0, "quit": 0}
        failed = 0
        try:
            self.send("220 mail.example.test ESMTP Postfix")
            while True:
                cmd = self.recv()
                verb = cmd.split(" ", 1)[0].lower()
                if verb in ("ehlo", "helo"):
                    cmds["ehlo"] += 1
                    self.send("250-mail.example.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME")
                elif verb == "auth":
                    cmds["auth"] += 1
                    self.send("334 VXNlcm5hbWU6")
                    self.recv()
                    self.send("334 UGFzc3dvcmQ6")
                    self.recv()
                    failed += 1
                    log_line(path, pid, f"warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6")
                    self.send("535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6")
                elif verb == "quit":
                    cmds["quit"] += 1
                    self.send("221 2.0.0 Bye")
                    break
                else:
                    self.send("502 5.5.2 Error: command not recognized")
        except (EOFError, OSError):
            pass
        done = [f"ehlo={cmds['ehlo']}"] if cmds["ehlo"] else []
        done += [f"auth=0/{failed}"] if failed else []
        done += [f"quit={cmds['quit']}"] if cmds["quit"] else []
        total = sum(cmds.values())
        done.append(f"commands={total - failed}/{total}")
        log_line(path, pid, f"disconnect from unknown[{ip}] {' '.join(done)}")


class Server4(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class Server6(Server4):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def serve(path, port):
    servers = [Server4(("0.0.0.0", port), Session), Server6(("::", port), Session)]
    for s in servers:
        s.log_path = path
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def auth_once(host, port):
    with socket.socket(family(host), socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect((host, port))
        f = s.makefile("rwb")

        def say(text):
            f.write(text.encode() + b"\r\n")
            f.flush()

        def reply():
            while True:
                line = f.readline().decode()
                if not line:
                    raise EOFError("connection closed")
                if line[3:4] != "-":
                    return line

        reply()
        say("EHLO attacker.example.test")
        reply()
        say("AUTH LOGIN")
        reply()
        say(base64.b64encode(b"admin@example.test").decode())
        reply()
        say(base64.b64encode(b"hunter2").decode())
        code = reply()[:3]
        say("QUIT")
        reply()
        return code == "535"


def main(argv):
    if len(argv) >= 4 and argv[1] == "serve":
        serve(argv[2], int(argv[3]))
    elif len(argv) >= 4 and argv[1] == "auth":
        n = int(argv[4]) if len(argv) > 4 else 1
        ok = all(auth_once(argv[2], int(argv[3])) for _ in range(n))
        return 0 if ok else 1
    elif len(argv) >= 4 and argv[1] == "probe":
        try:
            with socket.create_connection((argv[2], int(argv[3])), timeout=float(argv[4]) if len(argv) > 4 else 2) as s:
                return 0 if s.recv(3) == b"220" else 1
        except OSError:
            return 1
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
