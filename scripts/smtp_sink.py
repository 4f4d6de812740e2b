#!/usr/bin/env python3
"""SMTP sink for vizora-ops tests (started by scripts/test.sh).

Accepts every message and stores it as one JSON file per message in OUT_DIR:

    <OUT_DIR>/<time_ns, 20 digits>-<counter, 6 digits>.json
    {"mail_from": "...", "rcpt_tos": ["..."], "data": "<raw RFC 5322 message as text>"}

Each file is written atomically (temporary dot-file in the same directory, then rename), so a reader that lists
`*.json` never sees a partial message. With --auth-user/--auth-pass the server requires AUTH (PLAIN or LOGIN, allowed
without TLS) and accepts only those credentials; others get 535, and MAIL before AUTH gets 530.

Usage: smtp_sink.py HOST PORT OUT_DIR [--auth-user USER --auth-pass PASS] [--pidfile FILE]
"""

import argparse
import asyncio
import itertools
import json
import os
import signal
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class StoringHandler:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, bytes):
            text = content.decode("utf-8", errors="replace")
        else:
            text = content
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": text,
        }
        name = f"{time.time_ns():020d}-{next(self.counter):06d}.json"
        tmp = os.path.join(self.out_dir, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(self.out_dir, name))
        return "250 Message accepted for delivery"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if (
            mechanism in ("PLAIN", "LOGIN")
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        ):
            return AuthResult(success=True)
        # handled=False: aiosmtpd answers "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=False, handled=False)


def main():
    p = argparse.ArgumentParser(description="SMTP sink that stores each message as JSON")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("out_dir")
    p.add_argument("--auth-user")
    p.add_argument("--auth-pass")
    p.add_argument("--pidfile")
    a = p.parse_args()
    if (a.auth_user is None) != (a.auth_pass is None):
        p.error("--auth-user and --auth-pass go together")
    os.makedirs(a.out_dir, exist_ok=True)

    handler = StoringHandler(os.path.abspath(a.out_dir))
    params = {"enable_SMTPUTF8": True}
    if a.auth_user is not None:
        params.update(
            authenticator=Authenticator(a.auth_user, a.auth_pass),
            auth_required=True,
            auth_require_tls=False,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, hostname="vizora-smtp-sink", **params), host=a.host, port=a.port)
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    if a.pidfile:
        with open(a.pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(a.pidfile + ".tmp", a.pidfile)
    mode = f"AUTH required (user {a.auth_user})" if a.auth_user else "no AUTH"
    print(f"smtp_sink: listening on {a.host}:{a.port}, {mode}, storing to {handler.out_dir}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        if a.pidfile:
            try:
                with open(a.pidfile) as f:
                    mine = f.read().strip() == str(os.getpid())
                if mine:
                    os.remove(a.pidfile)
            except FileNotFoundError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
