#!/usr/bin/env python3
"""Holds `trasloco serve` and doc/openapi.json to each other.

python3 openapi_check.py OPENAPI.json EXCHANGES.jsonl [--partial]

EXCHANGES.jsonl: one exchange per line as serve_client.py logs them
({"method", "path", "status", "type", "body"}).  Every exchange must match a
documented path and method (or be a refusal of an undocumented one: 400,
404 or 405 with an Error body), answer a documented status with a
documented content type, and a JSON body must validate against the
documented schema.  Every documented operation must have been exercised
(unless --partial: a test that covers some of them).
"""
import json
import re
import sys

spec = json.load(open(sys.argv[1]))
errors = []


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def validate(value, schema, where):
    schema = resolve(schema)
    if value is None:
        if not schema.get("nullable") and not any(
                resolve(s).get("nullable") for s in schema.get("oneOf", [])):
            if schema:  # {} accepts anything
                errors.append("%s: null where %s" % (where, schema.get("type", schema)))
        return
    if "allOf" in schema:
        for s in schema["allOf"]:
            validate(value, s, where)
        return
    if "oneOf" in schema:
        saved = len(errors)
        ok = 0
        for s in schema["oneOf"]:
            before = len(errors)
            validate(value, s, where)
            if len(errors) == before:
                ok += 1
            del errors[before:]
        del errors[saved:]
        if ok != 1:
            errors.append("%s: matches %d of oneOf" % (where, ok))
        return
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t in types and not isinstance(value, types[t]):
        errors.append("%s: %r is not %s" % (where, value, t))
        return
    if t == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        errors.append("%s: %r is not an integer" % (where, value))
        return
    if t == "number" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        errors.append("%s: %r is not a number" % (where, value))
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s: %r is not one of %s" % (where, value, schema["enum"]))
    if "minimum" in schema and value < schema["minimum"]:
        errors.append("%s: %r < %s" % (where, value, schema["minimum"]))
    if t == "object":
        for k in schema.get("required", []):
            if k not in value:
                errors.append("%s: %r is missing" % (where, k))
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                validate(v, props[k], "%s.%s" % (where, k))
            elif isinstance(extra, dict):
                validate(v, extra, "%s.%s" % (where, k))
            elif extra is False:
                errors.append("%s: undocumented key %r" % (where, k))
    if t == "array":
        for i, v in enumerate(value):
            validate(v, schema.get("items", {}), "%s[%d]" % (where, i))


templates = []
for tpath, ops in spec["paths"].items():
    rx = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(tpath)) + "$"
    templates.append((re.compile(rx), tpath, ops))
seen = set()
n = 0
for line in open(sys.argv[2]):
    ex = json.loads(line)
    n += 1
    method = ex["method"].lower()
    method = "get" if method == "head" else method
    path = ex["path"].split("?")[0]
    where = "%s %s -> %d" % (ex["method"], ex["path"], ex["status"])
    match = [(t, ops) for rx, t, ops in templates if rx.match(path)]
    op = match[0][1].get(method) if match else None
    if op is None:
        if ex["status"] not in (400, 404, 405):
            errors.append("%s: an undocumented route answered" % where)
        continue
    seen.add((method, match[0][0]))
    resp = op["responses"].get(str(ex["status"]))
    if resp is None:
        errors.append("%s: status %d is not documented" % (where, ex["status"]))
        continue
    resp = resolve(resp)
    content = resp.get("content")
    if not content:
        if ex["body"]:
            errors.append("%s: a body where none is documented" % where)
        continue
    ctype = (ex["type"] or "").split(";")[0].strip()
    if ctype not in content:
        errors.append("%s: content type %r, documented %s" % (where, ctype, list(content)))
        continue
    if ctype == "application/json":
        try:
            body = json.loads(ex["body"])
        except ValueError as e:
            errors.append("%s: not JSON: %s" % (where, e))
            continue
        validate(body, content[ctype]["schema"], where)
for rx, t, ops in ([] if "--partial" in sys.argv[3:] else templates):
    for m in ops:
        if m in ("get", "post", "put", "delete", "patch") and (m, t) not in seen:
            errors.append("%s %s: never exercised by the test" % (m.upper(), t))
if errors:
    sys.stderr.write("openapi_check: %d problem(s):\n  %s\n" % (len(errors), "\n  ".join(errors[:40])))
    sys.exit(1)
print("openapi_check: %d exchanges match %s (%d operations)" % (n, sys.argv[1], len(seen)))
