#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz corpora (fuzz/corpus/<target>/), from the project's own
examples: every request in docs/protocol.md, the requests and streams of tests/protocol.rs,
the example policies in etc/policies.d/ and the policies of the tests. Names are the SHA-1 of
the content, as libFuzzer names corpus files, so running it again changes nothing.

    python3 fuzz/seed.py          # from the repository root, or anywhere
"""

import hashlib
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"

REQUEST_TYPES = {
    "capability_request", "capability_validate", "capability_revoke", "capability_list",
    "status_request", "ping_request", "agent_status", "agent_reload", "agent_stop",
    "policy_list", "policy_test", "secret_read", "secret_write", "secret_list", "secret_delete",
}


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def env(kind, payload, id_="t1"):
    return json.dumps({"version": "1.0", "type": kind, "id": id_, "payload": payload},
                      separators=(",", ":"))


def requests():
    doc = (ROOT / "docs" / "protocol.md").read_text()
    found = []
    for block in re.findall(r"```json\n(.*?)```", doc, re.S):
        for line in block.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict) and v.get("type") in REQUEST_TYPES:
                found.append(line + "\n")
    # tests/protocol.rs: streams, malformed input, envelopes and payloads it sends.
    found += [
        '{"type":"ping_request","id":"a"}{"type":"ping_request","id":"b"}\n{\n  "type": '
        '"status_request",\n  "id": "c"\n}\n   {"type":"ping_request","id":"d","payload":'
        '{"ignored":[1,{"x":"}"}]}}',
        '{"type": nope}\n', "[1,2,3]\n", "hello\n",
        b'{"type":"ping_request","id":"\xff\xfe"}\n',
        '{"id":"x"}\n',
        env("secret_dump", {}),
        env("capability_request", {"resource": "r", "actions": "read"}),
        env("capability_validate", {}),
        env("capability_revoke", {"capability_id": ""}),
        env("capability_request", {"resource": "r", "actions": ["read"], "ttl": -5}),
        env("capability_request",
            {"resource": "r", "actions": ["read"], "constraints": {"geography": ["EU"]}}),
        env("capability_validate", {"capability_id": "cap_doesnotexist"}),
        env("capability_list", None),
        env("capability_list", {"filter": {"status": "active", "uid": 1000, "limit": 5,
                                           "offset": 1, "resource": "secret:/db"}}),
        env("capability_request", {"identity": "x", "resource": "secret:/db",
                                   "actions": ["read"]}),
        env("capability_request", {
            "resource": "secret:/db", "actions": ["read"], "maxUses": 2,
            "constraints": {"timeWindow": {
                "hours": [9, 17], "daysOfWeek": [1, 5],
                "blackoutPeriods": [{"start": "2026-01-01T00:00:00Z",
                                     "end": "2026-01-02T00:00:00+01:00"}]}}}),
        env("capability_validate", {"capability_id": "cap_1", "context": {
            "sourceIP": "10.0.0.1", "environment": {"stage": "prod"}, "userAgent": "x"}}),
        env("secret_list", {"capability_id": "cap_1", "path": "db/"}),
        env("secret_delete", {"capability_id": "cap_1", "path": "db/primary"}),
        # a request just under the tight limits, and one nested to the session's limit
        '{"type":"ping_request"}',
        '{"type":"ping_request","payload":' + "[" * 63 + "]" * 63 + "}",
        '{"type":"ping_request","payload":' + "[" * 64 + "]" * 64 + "}",
        '{"s":"a\\"}{\\\\"}{"t":1}',
    ]
    for f in found:
        write("request_stream", f)


def policies():
    for p in sorted((ROOT / "etc" / "policies.d").glob("*.example")):
        write("policy_parse", p.read_bytes())
    good = ('{"id":"p1","rules":[{"id":"r1","effect":"allow","resources":["secret:*"],'
            '"actions":["read"],"identities":["uid:1000"]}]}')
    for text in [
        good,
        good.replace('"rules"', '"status":"inactive","rules"'),
        good.replace('"effect"', '"efect":"x","effect"'),
        good.replace("uid:1000", "billing-app"),
        '{"id":"p2",\n "rules": [}',
        '{"id":"b",\n"rules":[{"id":"r","effect":"allow","resources":["*"],"actions":["*"],'
        '"identities":["bob"]}]}',
        '{"id":"b",\n  "rulez": []}',
        json.dumps({"id": "a", "rules": [{"id": "root-read", "effect": "allow",
                                          "resources": ["secret:*"], "actions": ["read"],
                                          "identities": ["user:root"], "max_ttl": 42}]}),
        json.dumps({"id": "c", "rules": [{"id": "t", "effect": "deny", "resources": ["x?*"],
                    "actions": ["*"], "identities": ["uid:0-999", "group:g", "unit:a*.service",
                                                    "exe:/bin/sh"],
                    "conditions": [
                        {"type": "identity", "key": "uid", "value": ["0"], "negate": True},
                        {"type": "resource", "operator": "matches", "value": "secret:/db/*"},
                        {"type": "action", "key": "action", "value": ["read", "list"]},
                        {"type": "time", "key": "hours", "value": [22, 23],
                         "timezone": "Europe/Paris"}]}]}),
        "id: p3\nrules:\n  - id: r\n    effect: deny\n    resources: [\"secret:/x\"]\n"
        "    actions: [\"*\"]\n    identities: [\"*\"]\n",
        "id: y\nrules:\n  - id: r\n    effect: allow\n    resources: [\"secret:/y/*\"]\n"
        "    actions: [read]\n    identities: [\"uid:1000\"]\n    max_uses: 3\n",
        "id: z\nrules:\n  - id: r\n    efect: allow\n",
        "id: p\nrules: [\n",
        "id: p\nrules:\n  - id: r\n    effect: perhaps\n",
        "a: &x 1\nb: *x\n",
        "a: 1\na: 2\n",
        "--- 1\n--- 2\n",
        "",
    ]:
        write("policy_parse", text)


if __name__ == "__main__":
    requests()
    policies()
    for t in sorted(OUT.iterdir()):
        print(t.name, len(list(t.iterdir())))
