#!/usr/bin/env python3
"""Regenerates `schema.rs` (the request wire-schema table used by `guard.rs`) and `samples.rs`
(test-only sample builders used by `guard/tests.rs`).

Reads the generated message code of the pinned kafka-protocol crate and extracts, per
request struct, the *facts* the guard needs: which wire type is read at which versions,
from which version the struct carries a tagged-field section, and which tags are known.

The covered requests are discovered, not listed: every variant of kafka-protocol's `ApiKey`
enum (`src/messages.rs`) names its request type (`/// API key for request FooRequest`), the
`pub use foo_request::FooRequest;` line names its module, `impl Request for FooRequest` gives
the key and `impl Message for FooRequest` the decodable versions. Every `*_request.rs` file
must be reached that way (the generator fails otherwise), so upgrading kafka-protocol and
re-running this script covers new APIs without any other change.

The parse is strict: a decoder line it does not understand, a struct referenced but not found
(in its own module or, for a shared struct, in exactly one other message module), or a field of
a Rust struct that its decoder never reads aborts the generator instead of yielding a table that
silently skips bytes.

Usage (writes schema.rs and samples.rs next to this script):
    python3 gen_schema.py ~/.cargo/registry/src/*/kafka-protocol-0.18.0
"""
import glob
import os
import re
import sys

CRATE = sys.argv[1]
OUT_DIR = os.path.dirname(os.path.abspath(__file__))
MESSAGES_DIR = f"{CRATE}/src/messages"
ALL = frozenset(range(0, 128))
# kafka-protocol `types::X` decoders of fixed or length-prefixed primitives -> `Ty` variant.
PRIM = {
    "Boolean": "Bool", "Int8": "I8", "Int16": "I16", "UInt16": "U16", "Int32": "I32",
    "UInt32": "U32", "Int64": "I64", "Uuid": "Uuid", "Float64": "F64", "String": "Str",
    "CompactString": "CStr", "Bytes": "Bytes", "CompactBytes": "CBytes",
    "UnsignedVarInt": "UVarInt", "UnsignedVarLong": "UVarLong", "VarInt": "VarInt",
    "VarLong": "VarLong",
}
# Array element decoders -> `Elem` variant (the walker's `Elem` enum must have each of these).
ELEM = {
    "Boolean": "Bool", "Int8": "I8", "Int16": "I16", "Int32": "I32", "Int64": "I64",
    "Uuid": "Uuid", "String": "Str", "CompactString": "CStr",
}


# Non-default sample values of fixed-size fields, by Rust type.
FIXED_SAMPLE = {
    "bool": "true", "i8": "7", "i16": "7", "u16": "7", "i32": "7", "u32": "7", "i64": "7",
    "f64": "7.5", "Uuid": "uuid::Uuid::from_u128(7)", "BrokerId": "BrokerId(7)",
    "ProducerId": "ProducerId(7)",
}


def die(msg):
    raise SystemExit(f"gen_schema.py: {msg}")


def cond_set(c):
    s = set(ALL)
    for part in c.split("&&"):
        m = re.fullmatch(r"\s*version\s*(>=|<=|==|!=|<|>)\s*(\d+)\s*", part)
        if not m:
            die(f"bad condition {c!r}")
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


class StructInfo:
    def __init__(self, module, name, versions, fields, tags, tagged_from, rty):
        self.module = module          # file stem, e.g. "fetch_request"
        self.name = name              # Rust struct name
        self.versions = versions      # its own `Message::VERSIONS`
        self.fields = fields          # [(field, versions, ty, struct name or None)]
        self.tags = tags              # [(tag, field, versions, ty, struct name or None)]
        self.tagged_from = tagged_from
        self.rty = rty                # field -> Rust type

    def key(self):
        return (self.module, self.name)


def parse_decode(name, body, fields_rty, versions):
    """Parses one `impl Decodable` body into fields, known tags and the tagged-section start.

    The body is kafka-protocol's generated decoder: a sequence of `let f = <decode>;` and
    `let f = if <version cond> { <decode> } else { <default> };` (possibly nested), then an
    optional tagged section `for _ in 0..num_tagged_fields { match tag { N => { ... } } }`.
    Anything unexpected aborts the generator, so new constructs cannot be silently skipped.
    """
    fields, tags = [], []
    constants = set()  # fields set to a constant at every version (not on the wire)
    tagged_from = None
    stack = []  # entries: [active set, union of the if/else-if chain's conditions]
    cur_let = None
    cur_tag = None
    in_unknown = False

    def active():
        s = set(versions)
        for e in stack:
            s &= e[0]
        return frozenset(s)

    def ty_of(expr, fname):
        """(Ty expression, referenced struct name or None) of a `types::...` decoder."""
        m = re.fullmatch(r"types::(\w+)(.*)", expr)
        if not m:
            die(f"{name}: unknown type expr {expr!r}")
        kind, rest = m.group(1), m.group(2)
        if kind in PRIM and rest == "":
            return PRIM[kind], None
        if kind in ("Struct", "OptionStruct") and rest == " { version }":
            s = inner_struct(fields_rty[fname])
            return f"{'Struct' if kind == 'Struct' else 'OptStruct'}(&@{s})", s
        m2 = re.fullmatch(r"\(types::(\w+)(.*)\)", rest)
        if kind in ("Array", "CompactArray") and m2:
            ek, erest = m2.group(1), m2.group(2)
            arr = "Arr" if kind == "Array" else "CArr"
            if ek == "Struct" and erest == " { version }":
                s = inner_struct(fields_rty[fname])
                return f"{arr}(Elem::Struct(&@{s}))", s
            if ek in ELEM and erest == "":
                return f"{arr}(Elem::{ELEM[ek]})", None
        die(f"{name}: unknown type expr {expr!r}")

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
            if tagged_from is not None:
                die(f"{name}: two tagged sections")
            tagged_from = min(active())
            if active() != frozenset(v for v in versions if v >= tagged_from):
                die(f"{name}: tagged section is not present from one version on")
            continue
        m = re.fullmatch(r"let (\w+) = (types::.*)\.decode\(buf\)\?;", line)
        if m and m.group(1) not in ("tag", "size", "num_tagged_fields"):
            a = active()
            if a:
                fields.append((m.group(1), a, *ty_of(m.group(2), m.group(1))))
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
                fields.append((cur_let, a, *ty_of(m.group(1), cur_let)))
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
            if cur_tag is None:
                die(f"{name}: assignment outside a tag arm: {line!r}")
            a = active()
            if a:
                tags.append((cur_tag, m.group(1), a, *ty_of(m.group(2), m.group(1))))
            continue
        if re.match(r"let (tag|size): u32 = types::UnsignedVarInt", line):
            continue
        if line.startswith("let unknown_value"):
            # The unknown-tag arm, or a struct without known tags: the value is skipped.
            continue
        if line.startswith(("unknown_tagged_fields.insert", "bail!", "let mut ")):
            continue
        m = re.fullmatch(r"let (\w+) = ([^{]*);", line)
        if m and "decode" not in line and not stack:
            constants.add(m.group(1))
            continue
        if "types::" in line or "decode" in line or line.endswith("{"):
            die(f"{name}: unexpected line {line!r}")
        # otherwise: a default value expression of an else-branch
    if stack:
        die(f"{name}: unbalanced blocks")
    return fields, tags, tagged_from, constants


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


DECODE_RE = re.compile(
    r"impl Decodable for (\w+) \{\s*fn decode<B: ByteBuf>\(buf: &mut B, version: i16\) "
    r"-> Result<Self> \{\n(.*?)\n    \}\n\}", re.S)
BAIL_RE = re.compile(
    r"^\s*if (version < (\d+) \|\| version > (\d+)|version != (\d+)) \{\s*"
    r"bail!\(\"specified version not supported by this message type\"\);\s*\}")


class Crate:
    def __init__(self):
        self.sources = {}
        for path in sorted(glob.glob(f"{MESSAGES_DIR}/*.rs")):
            self.sources[os.path.basename(path)[:-3]] = open(path).read()
        self.structs = {}  # (module, name) -> StructInfo

    def module_defining(self, name, prefer):
        """The module whose `impl Decodable` defines `name` (the referencing one first)."""
        if re.search(rf"impl Decodable for {name} \{{", self.sources[prefer]):
            return prefer
        found = [m for m, src in self.sources.items()
                 if re.search(rf"impl Decodable for {name} \{{", src)]
        if len(found) != 1:
            die(f"struct {name} (used in {prefer}) is defined in {found or 'no module'}")
        return found[0]

    def struct(self, module, name):
        key = (module, name)
        if key in self.structs:
            return self.structs[key]
        src = self.sources[module]
        m = next((m for m in DECODE_RE.finditer(src) if m.group(1) == name), None)
        if m is None:
            die(f"{module}: no decoder for {name}")
        body = m.group(2)
        bail = BAIL_RE.match(body)
        if not bail:
            die(f"{module}: {name}: decoder does not start with the version check")
        vm = re.search(r"impl Message for " + name + r" \{\s*const VERSIONS: VersionRange = "
                       r"VersionRange \{ min: (\d+), max: (\d+) \}", src)
        if not vm:
            die(f"{module}: no VERSIONS for {name}")
        vmin, vmax = int(vm.group(1)), int(vm.group(2))
        if bail.group(4) is not None:
            bmin = bmax = int(bail.group(4))
        else:
            bmin, bmax = int(bail.group(2)), int(bail.group(3))
        if (bmin, bmax) != (vmin, vmax):
            die(f"{module}: {name}: decoder accepts {bmin}..={bmax}, VERSIONS {vmin}..={vmax}")
        versions = frozenset(range(vmin, vmax + 1))
        rty = rust_types(src).get(name)
        if rty is None:
            die(f"{module}: no struct definition for {name}")
        try:
            fields, tags, tf, constants = parse_decode(name, body[bail.end():], rty, versions)
        except KeyError as e:
            die(f"{module}: {name}: unknown field {e!r}")
        # Every field of the Rust struct must be read by the decoder (as a field or a tag) at
        # some version, or the parse missed a construct.
        decoded = {f for f, *_ in fields} | {f for _, f, *_ in tags}
        missed = sorted(set(rty) - decoded - constants - {"unknown_tagged_fields"})
        if missed:
            die(f"{module}: {name}: fields never decoded: {missed}")
        info = StructInfo(module, name, versions, [], [], tf, rty)
        self.structs[key] = info
        # Resolve referenced structs (possibly defined in another module) and recurse.
        for fname, vs, ty, sname in fields:
            info.fields.append((fname, vs, ty, self.resolve(module, sname)))
        for tag, fname, vs, ty, sname in tags:
            info.tags.append((tag, fname, vs, ty, self.resolve(module, sname)))
        return info

    def resolve(self, module, sname):
        if sname is None:
            return None
        return self.struct(self.module_defining(sname, module), sname).key()


def parse_api_keys(crate):
    """[(variant, key, request type, module, versions)] for every `ApiKey` variant."""
    msgs_rs = open(f"{CRATE}/src/messages.rs").read()
    enum = re.search(r"pub enum ApiKey \{(.*?)\n\}", msgs_rs, re.S)
    if not enum:
        die("no `pub enum ApiKey` in messages.rs")
    variants = re.findall(r"/// API key for request (\w+)\s*\n\s*(\w+) = (\d+),", enum.group(1))
    if len(variants) != enum.group(1).count(" = "):
        die("could not parse every ApiKey variant")
    modules = dict((t, m) for m, t in re.findall(r"pub use (\w+)::(\w+);", msgs_rs))
    apis = []
    for rtype, variant, key in variants:
        key = int(key)
        km = re.search(r"impl Request for " + rtype + r" \{\s*const KEY: i16 = (\d+);", msgs_rs)
        if not km or int(km.group(1)) != key:
            die(f"ApiKey::{variant} = {key} but {rtype}'s Request::KEY is "
                f"{km.group(1) if km else 'missing'}")
        module = modules.get(rtype)
        if module is None or module not in crate.sources:
            die(f"no module for {rtype}")
        apis.append((variant, key, rtype, module))
    reached = {m for _, _, _, m in apis}
    unreached = sorted(m for m in crate.sources if m.endswith("_request") and m not in reached)
    if unreached:
        die(f"request modules without an ApiKey variant: {unreached}")
    return sorted(apis, key=lambda a: a[1])


def resolve_ty(crate, ty, ref, here):
    """Replaces the `@Struct` placeholder with the Rust path of the struct's static."""
    if ref is None:
        return ty
    mod, name = ref
    path = const_name(name) if mod == here else f"super::{mod}::{const_name(name)}"
    return re.sub(r"@\w+", path, ty)


def emit_schema(crate, apis, order):
    out = []
    p = out.append
    p("// @generated by gen_schema.py from kafka-protocol 0.18.0's generated request code.")
    p("// Do not edit by hand; re-run the generator (see its docstring) after upgrading.")
    p("use super::Msg;\n")
    by_mod = {}
    for key in order:
        by_mod.setdefault(key[0], []).append(crate.structs[key])
    for mod in sorted(by_mod):
        body = []
        for s in by_mod[mod]:
            body.append(f"    pub(super) static {const_name(s.name)}: StructDef = StructDef {{")
            body.append(f"        name: \"{s.name}\",")
            body.append("        fields: &[")
            for fname, vs, ty, ref in s.fields:
                ty2 = resolve_ty(crate, ty, ref, mod)
                for a, b in ranges(vs):
                    body.append(f"            Field {{ name: \"{s.name}.{fname}\", min: {a}, "
                                f"max: {b}, ty: {ty2} }},")
            body.append("        ],")
            tf = s.tagged_from if s.tagged_from is not None else "i16::MAX"
            body.append(f"        tagged_from: {tf},")
            body.append("        tags: &[")
            for tag, fname, vs, ty, ref in s.tags:
                ty2 = resolve_ty(crate, ty, ref, mod)
                for a, b in ranges(vs):
                    body.append(f"            Tag {{ tag: {tag}, name: \"{s.name}.{fname}\", "
                                f"min: {a}, max: {b}, ty: {ty2} }},")
            body.append("        ],")
            body.append("    };")
            body.append("")
        text = "\n".join(body)
        uses = [u for u, used in (("Elem", "Elem::" in text), ("Field", "Field {" in text),
                                  ("StructDef", True), ("Tag", "Tag {" in text)) if used]
        variant_used = re.search(r"ty: [A-Z]", text)
        p(f"pub(super) mod {mod} {{")
        p(f"    use super::super::{{{', '.join(uses)}}};")
        if variant_used:
            p("    use super::super::Ty::*;")
        p("")
        p(text.rstrip("\n"))
        p("}\n")
    p("/// Covered requests, sorted by API key: (api key, versions kafka-protocol decodes,")
    p("/// top-level struct). Every `ApiKey` variant of kafka-protocol is here.")
    p("pub(super) static MESSAGES: &[Msg] = &[")
    for variant, key, rtype, mod in apis:
        s = crate.structs[(mod, rtype)]
        p(f"    Msg {{ api_key: {key}, min: {min(s.versions)}, max: {max(s.versions)}, "
          f"body: &{mod}::{const_name(rtype)} }},")
    p("];\n")
    max_key = max(a[1] for a in apis)
    p(f"/// `MESSAGES` index by API key (`{max_key + 1}` entries; `u8::MAX` = not covered).")
    idx = ["u8::MAX"] * (max_key + 1)
    for i, (_, key, _, _) in enumerate(apis):
        idx[key] = str(i)
    p(f"pub(super) static INDEX: [u8; {max_key + 1}] = [")
    for i in range(0, len(idx), 12):
        p("    " + " ".join(f"{x}," for x in idx[i:i + 12]))
    p("];\n")
    p("/// Every request type of kafka-protocol as `ApiKey variant => request type`, for the tests")
    p("/// (an exhaustive `match` over `ApiKey` built from it stops compiling if one is missing).")
    p("#[cfg(test)]")
    p("macro_rules! for_each_request {")
    p("    ($mac:ident) => {")
    p("        $mac! {")
    for variant, key, rtype, mod in apis:
        p(f"            {variant} => {rtype},")
    p("        }")
    p("    };")
    p("}")
    p("#[cfg(test)]")
    p("pub(super) use for_each_request;")
    return "\n".join(out) + "\n"


def sample_value(crate, ty, ref, rty, nulls_var):
    """A Rust expression for a non-default value of wire type `ty` and Rust type `rty`."""
    opt = False
    m = re.fullmatch(r"Option<(.*)>", rty)
    if m:
        opt, rty = True, m.group(1)
    kind = re.match(r"\w+", ty).group(0)
    if kind in ("Str", "CStr"):
        inner = "s()" if rty == "StrBytes" else "s().into()"
    elif kind in ("Bytes", "CBytes"):
        if rty != "Bytes":
            die(f"bytes field of Rust type {rty}")
        inner = "b()"
    elif kind in ("Arr", "CArr"):
        em = re.fullmatch(r"Vec<(.*)>", rty)
        if not em:
            die(f"array field of Rust type {rty}")
        if ref is not None:
            elem = f"Sample::sample(v, {nulls_var})"
        elif "Elem::Str" in ty or "Elem::CStr" in ty:
            elem = "s()" if em.group(1) == "StrBytes" else "s().into()"
        else:
            elem = "Default::default()"
        inner = f"vec![{elem}; 2]"
    elif kind in ("Struct", "OptStruct"):
        inner = f"Sample::sample(v, {nulls_var})"
    else:
        # Fixed-size: a non-default value, so that the encoder writes tagged ones and refuses
        # any field set at a version it does not have.
        inner = FIXED_SAMPLE.get(rty.replace("super::", ""))
        if inner is None:
            die(f"no sample value for {kind} of Rust type {rty}")
    if opt:
        return f"if {nulls_var} {{ None }} else {{ Some({inner}) }}"
    return inner


def crate_path(crate, ref):
    mod, name = ref
    return f"{mod}::{name}"


def version_pattern(vs):
    return " | ".join(f"{a}..={b}" if a != b else f"{a}" for a, b in ranges(vs))


def emit_samples(crate, order):
    out = []
    p = out.append
    p("// @generated by gen_schema.py from kafka-protocol 0.18.0's generated request code.")
    p("// Do not edit by hand; re-run the generator (see its docstring) after upgrading.")
    p("//! Sample values of every request struct, for the guard's cross-check tests: every field")
    p("//! that exists at the version gets a non-default value (strings, bytes, two-element")
    p("//! arrays, present optional structs and tagged fields), plus an unknown tagged field;")
    p("//! with `nulls`, nullable fields are null instead. kafka-protocol's encoder, not this")
    p("//! file, decides what goes on the wire.")
    p("use bytes::Bytes;")
    p("use kafka_protocol::messages::*;")
    p("use kafka_protocol::protocol::StrBytes;\n")
    p("/// Builds a sample value of a request struct for a version.")
    p("pub(super) trait Sample {")
    p("    /// A value with every field that exists at `v` set (nullable ones null if `nulls`).")
    p("    fn sample(v: i16, nulls: bool) -> Self;")
    p("}\n")
    p("fn s() -> StrBytes {")
    p("    StrBytes::from_static_str(\"ab\")")
    p("}\n")
    p("fn b() -> Bytes {")
    p("    Bytes::from_static(b\"xyz\")")
    p("}\n")
    for key in order:
        s = crate.structs[key]
        path = crate_path(crate, key)
        stmts = []
        present = {}  # field -> (versions, ty, ref)
        for fname, vs, ty, ref in s.fields:
            e = present.setdefault(fname, [set(), ty, ref])
            e[0] |= vs
        for tag, fname, vs, ty, ref in s.tags:
            e = present.setdefault(fname, [set(), ty, ref])
            e[0] |= vs
        for fname, (vs, ty, ref) in present.items():
            val = sample_value(crate, ty, ref, s.rty[fname], "nulls")
            if val is None:
                continue
            setter = f"m.with_{fname.lstrip('_')}({val})"
            if frozenset(vs) == s.versions:
                stmts.append(f"    m = {setter};")
            else:
                stmts.append(f"    if matches!(v, {version_pattern(vs)}) {{")
                stmts.append(f"        m = {setter};")
                stmts.append("    }")
        if s.tagged_from is not None:
            tf_vs = frozenset(x for x in s.versions if x >= s.tagged_from)
            unknown = "m.with_unknown_tagged_field(1000, b())"
            if tf_vs == s.versions:
                stmts.append("    if !nulls {")
            else:
                stmts.append(f"    if !nulls && matches!(v, {version_pattern(tf_vs)}) {{")
            stmts.append(f"        m = {unknown};")
            stmts.append("    }")
        text = "\n".join(stmts)
        v_arg = "v" if re.search(r"\bv\b", text) else "_v"
        n_arg = "nulls" if "nulls" in text else "_nulls"
        p(f"impl Sample for {path} {{")
        p(f"    fn sample({v_arg}: i16, {n_arg}: bool) -> Self {{")
        if stmts:
            p("        let mut m = Self::default();")
            for line in stmts:
                p("    " + line)
            p("        m")
        else:
            p("        Self::default()")
        p("    }")
        p("}\n")
    return "\n".join(out).rstrip("\n") + "\n"


def main():
    crate = Crate()
    apis = parse_api_keys(crate)
    for variant, key, rtype, mod in apis:
        crate.struct(mod, rtype)
    # Deterministic order: by module, then by first appearance in the module's source.
    def pos(k):
        return (k[0], crate.sources[k[0]].find(f"impl Decodable for {k[1]} {{"))
    order = sorted(crate.structs, key=pos)
    with open(f"{OUT_DIR}/schema.rs", "w") as f:
        f.write(emit_schema(crate, apis, order))
    with open(f"{OUT_DIR}/samples.rs", "w") as f:
        f.write(emit_samples(crate, order))
    nversions = sum(max(crate.structs[(m, t)].versions) - min(crate.structs[(m, t)].versions) + 1
                    for _, _, t, m in apis)
    print(f"{len(apis)} api keys, {nversions} versions, {len(crate.structs)} structs",
          file=sys.stderr)


main()
