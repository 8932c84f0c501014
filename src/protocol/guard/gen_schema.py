#!/usr/bin/env python3
"""Regenerates `schema.rs` (the request wire-schema table used by `guard.rs`).

Reads the generated message code of the pinned kafka-protocol crate and extracts, per
request struct, the *facts* the guard needs: which wire type is read at which versions,
from which version the struct carries a tagged-field section, and which tags are known.
Usage: python3 gen_schema.py ~/.cargo/registry/src/*/kafka-protocol-0.18.0 > schema.rs
"""
import re
import sys

CRATE = sys.argv[1]
# (api key, file stem) of the covered requests.
APIS = [
    (0, "produce"), (1, "fetch"), (2, "list_offsets"), (3, "metadata"), (8, "offset_commit"),
    (9, "offset_fetch"), (10, "find_coordinator"), (11, "join_group"), (12, "heartbeat"),
    (13, "leave_group"), (14, "sync_group"), (15, "describe_groups"), (16, "list_groups"),
    (18, "api_versions"), (19, "create_topics"), (20, "delete_topics"), (22, "init_producer_id"),
    (23, "offset_for_leader_epoch"), (32, "describe_configs"), (37, "create_partitions"),
    (42, "delete_groups"), (46, "list_partition_reassignments"), (47, "offset_delete"),
    (60, "describe_cluster"), (61, "describe_producers"),
]
ALL = frozenset(range(0, 128))
PRIM = {
    "Boolean": "Bool", "Int8": "I8", "Int16": "I16", "Int32": "I32", "Int64": "I64",
    "Uuid": "Uuid", "Float64": "F64", "String": "Str", "CompactString": "CStr",
    "Bytes": "Bytes", "CompactBytes": "CBytes", "UnsignedVarInt": "UVarInt",
    "VarInt": "VarInt", "VarLong": "VarLong",
}


def cond_set(c):
    s = set(ALL)
    for part in c.split("&&"):
        m = re.fullmatch(r"\s*version\s*(>=|<=|==|!=|<|>)\s*(\d+)\s*", part)
        if not m:
            raise SystemExit(f"bad condition {c!r}")
        op, n = m.group(1), int(m.group(2))
        f = {">=": lambda v: v >= n, "<=": lambda v: v <= n, "==": lambda v: v == n,
             "!=": lambda v: v != n, "<": lambda v: v < n, ">": lambda v: v > n}[op]
        s = {v for v in s if f(v)}
    return frozenset(s)


def rust_types(src):
    """struct name -> {field -> rust type}"""
    out = {}
    for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", src, re.S):
        out[m.group(1)] = dict(re.findall(r"pub (\w+): ([^\n]+),\n", m.group(2) + "\n"))
    return out


def inner_struct(rty):
    t = rty
    while True:
        m = re.fullmatch(r"(?:Option|Vec)<(.*)>", t)
        if not m:
            break
        t = m.group(1)
    return t.replace("super::", "")


def parse_decode(name, body, fields_rty, versions):
    fields, tags = [], []
    tagged_from = None
    stack = []  # entries: [set, chain_union]
    cur_let = None
    cur_tag = None
    in_unknown = False

    def active():
        s = set(versions)
        for e in stack:
            s &= e[0]
        return frozenset(s)

    def ty_of(expr, fname):
        m = re.fullmatch(r"types::(\w+)(.*)", expr)
        kind, rest = m.group(1), m.group(2)
        if kind in PRIM and rest == "":
            return PRIM[kind]
        if kind in ("Struct", "OptionStruct") and rest == " { version }":
            s = inner_struct(fields_rty[fname])
            return f"{'Struct' if kind == 'Struct' else 'OptStruct'}(&{s})"
        m2 = re.fullmatch(r"\(types::(\w+)(.*)\)", rest)
        if kind in ("Array", "CompactArray") and m2:
            ek, erest = m2.group(1), m2.group(2)
            arr = "Arr" if kind == "Array" else "CArr"
            if ek == "Struct" and erest == " { version }":
                return f"{arr}(Elem::Struct(&{inner_struct(fields_rty[fname])}))"
            if ek in PRIM and erest == "":
                return f"{arr}(Elem::{PRIM[ek]})"
        raise SystemExit(f"{name}: unknown type expr {expr!r}")

    for raw in body.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("Ok(Self"):
            break
        if in_unknown:
            if line == "}":
                in_unknown = False
            continue
        if line.startswith("let num_tagged_fields"):
            tagged_from = min(active())
            continue
        m = re.fullmatch(r"let (\w+) = (types::.*)\.decode\(buf\)\?;", line)
        if m and m.group(1) not in ("tag", "size"):
            a = active()
            if a:
                fields.append((m.group(1), a, ty_of(m.group(2), m.group(1))))
            continue
        m = re.fullmatch(r"let (\w+) = if (.*) \{", line)
        if m:
            cur_let = m.group(1)
            cs = cond_set(m.group(2))
            stack.append([cs, set(cs)])
            continue
        m = re.fullmatch(r"if (version.*) \{", line)
        if m:
            cs = cond_set(m.group(1))
            stack.append([cs, set(cs)])
            continue
        m = re.fullmatch(r"\} else if (.*) \{", line)
        if m:
            e = stack.pop()
            cs = cond_set(m.group(1))
            stack.append([frozenset(cs - e[1]), e[1] | cs])
            continue
        if line == "} else {":
            e = stack.pop()
            stack.append([frozenset(ALL - e[1]), set(ALL)])
            continue
        if line in ("}", "};"):
            if stack:
                stack.pop()
            continue
        m = re.fullmatch(r"(types::.*)\.decode\(buf\)\?", line)
        if m:
            a = active()
            if a:
                fields.append((cur_let, a, ty_of(m.group(1), cur_let)))
            continue
        if line.startswith("let num_tagged_fields"):
            tagged_from = min(active())
            continue
        if line.startswith("for _ in 0..num_tagged_fields") or line == "match tag {":
            stack.append([ALL, set(ALL)])
            continue
        m = re.fullmatch(r"(\d+) => \{", line)
        if m:
            cur_tag = int(m.group(1))
            stack.append([ALL, set(ALL)])
            continue
        if line == "_ => {":
            in_unknown = True
            continue
        m = re.fullmatch(r"(\w+) = (types::.*)\.decode\(buf\)\?;", line)
        if m:
            a = active()
            if a:
                tags.append((cur_tag, m.group(1), a, ty_of(m.group(2), m.group(1))))
            continue
        if re.match(r"let (tag|size): u32 = types::UnsignedVarInt", line) or line.startswith(
                ("let unknown_value", "unknown_tagged_fields.insert", "bail!", "let mut ")):
            continue
        if "types::" in line or line.endswith("{"):
            raise SystemExit(f"{name}: unexpected line {line!r}")
        # otherwise: a default value expression of an else-branch
    return fields, tags, tagged_from


def ranges(vs):
    vs = sorted(vs)
    out = []
    for v in vs:
        if out and out[-1][1] == v - 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


def const_name(s):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", s).upper()


def main():
    print("// @generated by gen_schema.py from kafka-protocol 0.18.0's generated request code.")
    print("// Do not edit by hand; re-run the generator (see its docstring) after upgrading.")
    print("use super::{Elem, Field, Msg, StructDef, Tag, Ty::*};\n")
    msgs = []
    for key, stem in APIS:
        src = open(f"{CRATE}/src/messages/{stem}_request.rs").read()
        rty = rust_types(src)
        top = "".join(p.capitalize() for p in stem.split("_")) + "Request"
        vm = re.search(r"impl Message for " + top + r" \{\s*const VERSIONS: VersionRange = VersionRange \{ min: (\d+), max: (\d+) \}", src)
        vmin, vmax = int(vm.group(1)), int(vm.group(2))
        versions = frozenset(range(vmin, vmax + 1))
        msgs.append((key, top, vmin, vmax))
        for m in re.finditer(r"impl Decodable for (\w+) \{\s*fn decode<B: ByteBuf>\(buf: &mut B, version: i16\) -> Result<Self> \{\n(.*?)\n    \}\n\}", src, re.S):
            sname, body = m.group(1), m.group(2)
            # drop the leading version-range bail
            body = re.sub(r"^\s*if version < \d+ \|\| version > \d+ \{\s*bail!\([^)]*\);\s*\}", "", body, count=1)
            try:
                fields, tags, tf = parse_decode(sname, body, rty[sname], versions)
            except KeyError as e:
                raise SystemExit(f"{stem}: {sname}: {e!r} {rty.get(sname)}")
            print(f"pub(super) static {const_name(sname)}: StructDef = StructDef {{")
            print(f"    name: \"{sname}\",")
            print("    fields: &[")
            for fname, vs, ty in fields:
                for a, b in ranges(vs):
                    ty2 = re.sub(r"&(\w+)", lambda mm: "&" + const_name(mm.group(1)), ty)
                    print(f"        Field {{ name: \"{sname}.{fname}\", min: {a}, max: {b}, ty: {ty2} }},")
            print("    ],")
            print(f"    tagged_from: {tf if tf is not None else 'i16::MAX'},")
            print("    tags: &[")
            for tag, fname, vs, ty in tags:
                for a, b in ranges(vs):
                    ty2 = re.sub(r"&(\w+)", lambda mm: "&" + const_name(mm.group(1)), ty)
                    print(f"        Tag {{ tag: {tag}, name: \"{sname}.{fname}\", min: {a}, max: {b}, ty: {ty2} }},")
            print("    ],")
            print("};\n")
    print("/// Covered requests: (api key, versions kafka-protocol decodes, top-level struct).")
    print("pub(super) static MESSAGES: &[Msg] = &[")
    for key, top, a, b in msgs:
        print(f"    Msg {{ api_key: {key}, min: {a}, max: {b}, body: &{const_name(top)} }},")
    print("];")


main()
