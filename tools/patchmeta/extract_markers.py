#!/usr/bin/env python3
"""Extract the Kubernetes 1.33 patch/list markers into crates/schema/tests/data/.

Kubernetes' Go API types carry comment markers that openapi-gen turns into OpenAPI extensions:

  +patchStrategy=merge|retainKeys|merge,retainKeys  -> x-kubernetes-patch-strategy
  +patchMergeKey=<field>                            -> x-kubernetes-patch-merge-key
  +listType=atomic|set|map                          -> x-kubernetes-list-type
  +listMapKey=<field> (repeated, in order)          -> x-kubernetes-list-map-keys
  +mapType=atomic|granular (on a map field)         -> x-kubernetes-map-type
  +structType=atomic|granular (on a type)           -> x-kubernetes-map-type on the type

The .proto files generated from those Go types keep the Go comments, and the prost bindings in
the k8s-pb crate keep the proto comments as `///` doc comments. This script reads them from
k8s-pb 0.7.0 (Kubernetes 1.33; 0.8.0 has the same comments) in the local cargo registry and
writes one row per field (or type) that carries at least one of the markers above.

Only marker lines count: a line of the doc comment that starts with `+`. Marker text quoted
inside prose or inside indented Go examples (`//     // +listType=map`) is ignored, and so are Go
struct tags (`patchStrategy:"merge"`): the .proto comments do not carry struct tags.

prost's snake_case field names are lossy (`pod_i_ps`), so JSON names and definition names are
resolved with tools/protogen/protogen.py against k8s-openapi 0.29.0 (module v1_33, generated from
the Kubernetes 1.33 OpenAPI document). Go embedded structs (`json:",inline"`, e.g.
EphemeralContainer's EphemeralContainerCommon) are flattened into the embedding type, as they are
in JSON and OpenAPI.

Usage:
  python3 tools/patchmeta/extract_markers.py          # rewrite the fact file
  python3 tools/patchmeta/extract_markers.py --check  # exit 1 if the committed file differs
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "protogen"))
import protogen  # noqa: E402  (name resolution shared with the protobuf table generator)

K8S_PB = "k8s-pb-0.7.0"
KUBE = "1.33"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "crates", "schema", "tests", "data", "k8s-v1.33-field-markers.tsv")

MARKERS = ("patchStrategy", "patchMergeKey", "listType", "listMapKey", "mapType", "structType")
MARKER_RE = re.compile(r"^\+(" + "|".join(MARKERS) + r")=(\S*)\s*$")

STRUCT_RE = re.compile(r"^((?:///[^\n]*\n)*)(?:#\[[^\n]*\]\n)*pub struct (\w+) \{\n(.*?)^\}", re.M | re.S)
FIELD_RE = re.compile(
    r"((?:[ \t]*///[^\n]*\n)*)[ \t]*#\[prost\(([^\]]*)\)\]\s*pub (?:r#)?(\w+):\s*(.*?),\n", re.S
)


def doc_lines(block):
    return [re.sub(r"^\s*/// ?", "", l) for l in block.split("\n") if l.strip().startswith("///")]


def markers(lines):
    """The markers of a doc comment: name -> list of values, in order."""
    out = {}
    for l in lines:
        m = MARKER_RE.match(l.strip())
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def parse(src):
    """(mod_dir, prost name) -> (type markers, [(prost field, kind, target, label, markers)])."""
    msgs = {}
    for dirpath, _dirs, files in os.walk(src):
        if "mod.rs" not in files:
            continue
        mod_dir = os.path.relpath(dirpath, src)
        text = open(os.path.join(dirpath, "mod.rs"), encoding="utf-8").read()
        for m in STRUCT_RE.finditer(text):
            tmarks = markers(doc_lines(m.group(1)))
            fields = []
            for f in FIELD_RE.finditer(m.group(3)):
                attrs, fname, fty = f.group(2), f.group(3), f.group(4)
                kind = attrs.split(",")[0].strip()
                label = "Repeated" if "repeated" in attrs else "Optional"
                target = protogen.resolve_type(mod_dir, fty) if kind == "message" else None
                fields.append((fname, kind, target, label, markers(doc_lines(f.group(1)))))
            msgs[(mod_dir, m.group(2))] = (tmarks, fields)
    return msgs


def definition_prefix(mod_dir):
    # k8s.io.apiextensions_apiserver.pkg... -> io.k8s.apiextensions-apiserver.pkg...
    pkg = protogen.package_of(mod_dir)[len("k8s.io.") :]
    return "io.k8s." + pkg.replace("_", "-")


def build():
    pb = parse(os.path.join(protogen.find_crate(K8S_PB), "src"))
    openapi_src = os.path.join(protogen.find_crate(protogen.K8S_OPENAPI), "src", protogen.OPENAPI_FEATURE)
    defs, _ = protogen.parse_openapi(openapi_src)  # k8s.io.<pkg> -> {Type: [json names]}

    def type_name(key):
        mod_dir, pname = key
        pkg = protogen.package_of(mod_dir)
        own = [n for n in defs.get(pkg, {}) if protogen.norm(n) == protogen.norm(pname)]
        return own[0] if own else pname

    def json_names(key):
        return defs.get(protogen.package_of(key[0]), {}).get(type_name(key))

    problems = []

    def flatten(key, depth=0):
        """[(json name, markers)] of a message, embedded structs flattened."""
        known = json_names(key)
        out = []
        for fname, kind, target, label, marks in pb[key][1]:
            n = protogen.norm(fname)
            cands = [j for j in (known or []) if protogen.norm(j) == n]
            if known is not None and not cands and kind == "message" and label == "Optional" and depth < 4:
                inner = flatten(target, depth + 1)
                if inner and all(j in known for j, _ in inner if j):
                    if marks:
                        problems.append(f"markers on embedded field {key}.{fname}")
                    out.extend(inner)
                    continue
            if cands:
                json = cands[0]
            else:
                json = protogen.lower_camel(fname)
                if known is not None and marks:
                    problems.append(f"{key}.{fname}: no JSON name in k8s-openapi; used {json}")
            out.append((json, marks))
        return out

    rows = []
    for key in sorted(pb):
        mod_dir, _ = key
        if protogen.package_of(mod_dir) in protogen.SKIP_PACKAGES:
            continue
        if protogen.package_of(mod_dir) + "." + type_name(key) in protogen.SPECIAL:
            # Not a JSON object of its fields (Quantity, IntOrString, JSONSchemaPropsOrArray, ...).
            continue
        definition = definition_prefix(mod_dir) + "." + type_name(key)
        tmarks = pb[key][0]
        if tmarks:
            rows.append((definition, "", tmarks))
        for json, marks in flatten(key):
            if marks:
                rows.append((definition, json, marks))

    lines = []
    for definition, field, m in sorted(rows):
        for name in MARKERS:
            if name != "listMapKey" and len(m.get(name, [])) > 1:
                problems.append(f"{definition}.{field}: {name} given twice")
        lines.append(
            "\t".join(
                [
                    definition,
                    field or "-",
                    m.get("patchStrategy", ["-"])[0],
                    m.get("patchMergeKey", ["-"])[0],
                    m.get("listType", ["-"])[0],
                    ",".join(m.get("listMapKey", [])) or "-",
                    m.get("mapType", ["-"])[0],
                    m.get("structType", ["-"])[0],
                ]
            )
        )
    return lines, problems


HEADER = f"""\
# Patch and list markers of the Kubernetes {KUBE} API types, one row per field (or type) that has any.
#
# Source: the Go comment markers (+patchStrategy, +patchMergeKey, +listType, +listMapKey, +mapType,
# +structType) of the Kubernetes {KUBE} API types (k8s.io/api, k8s.io/apimachinery,
# k8s.io/apiextensions-apiserver, k8s.io/kube-aggregator; Copyright The Kubernetes Authors,
# Apache-2.0), as carried into the .proto comments and the doc comments of the k8s-pb 0.7.0 crate
# (Apache-2.0). JSON and definition names resolved against k8s-openapi 0.29.0 (v1_33).
# Generated by tools/patchmeta/extract_markers.py; do not edit by hand.
#
# Go struct tags (patchStrategy:"merge" patchMergeKey:"name") are not in the .proto comments and so
# not here: a field whose struct tag declares a strategy without a comment marker has no row.
#
# Messages whose JSON form is not an object of their fields (Quantity, IntOrString,
# JSONSchemaPropsOrArray, ...; tools/protogen/protogen.py SPECIAL) are left out.
#
# Columns: definition, field ("-" for the type itself), patchStrategy, patchMergeKey, listType,
# listMapKey (comma-separated, in order), mapType, structType; "-" = marker absent.
"""


def main():
    lines, problems = build()
    for p in problems:
        print("extract_markers: problem:", p, file=sys.stderr)
    if problems:
        sys.exit(2)
    text = HEADER + "\n".join(lines) + "\n"
    if "--check" in sys.argv[1:]:
        cur = open(OUT, encoding="utf-8").read() if os.path.exists(OUT) else ""
        if cur != text:
            sys.exit(f"extract_markers: {OUT} is stale; run python3 tools/patchmeta/extract_markers.py")
        print("extract_markers: fact file is up to date")
        return
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"extract_markers: wrote {len(lines)} rows to {OUT}")


if __name__ == "__main__":
    main()
