#!/usr/bin/env python3
"""Generate crates/codec/src/table.rs: the Kubernetes protobuf message table.

Inputs (read from the local cargo registry, no network):
  * k8s-pb 0.8.0 (prost bindings generated from the Kubernetes 1.33 .proto files): message names,
    field numbers, wire types, labels, maps and nested message types.
  * k8s-openapi 0.29.0, module v1_33: the exact Go type names ("Generated from definition ...")
    and the exact JSON field names (the deserializers' `"podIPs" => Field::Key_pod_ips` arms),
    because prost's snake_case field names are lossy.

Usage:
  python3 tools/protogen/protogen.py            # rewrite crates/codec/src/table.rs
  python3 tools/protogen/protogen.py --check    # exit 1 if the committed table differs
  python3 tools/protogen/protogen.py --report   # also print how every name was resolved

Set PROTOGEN_REGISTRY to a cargo registry `src/<index>` directory to override the lookup.
"""

import glob
import os
import re
import sys

K8S_PB = "k8s-pb-0.8.0"
K8S_PB_KUBE = "1.33"
K8S_OPENAPI = "k8s-openapi-0.29.0"
OPENAPI_FEATURE = "v1_33"

# Exit status when the input crates are not in the local registry (the table test then skips).
SOURCES_MISSING = 3

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "crates", "codec", "src", "table.rs")

# Messages whose JSON form is not an object of their fields. The transcoder implements each.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "FieldsV1",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": "Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawExtension",
}
for _v in ("v1", "v1beta1"):
    _p = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions." + _v
    SPECIAL[_p + ".JSON"] = "Json"
    SPECIAL[_p + ".JSONSchemaPropsOrArray"] = "SchemaOrArray"
    SPECIAL[_p + ".JSONSchemaPropsOrBool"] = "SchemaOrBool"
    SPECIAL[_p + ".JSONSchemaPropsOrStringArray"] = "SchemaOrStringArray"

# Go named []string types that protobuf wraps as `message X { repeated string items = 1; }`
# but JSON writes as a plain array (metav1.Verbs, the authn/authz/certificates ExtraValue).
STRING_LIST_NAMES = {"Verbs", "ExtraValue"}

# API group -> k8s-pb module directory holding its versions.
GROUP_DIRS = {
    "": "api/core",
    "admission.k8s.io": "api/admission",
    "admissionregistration.k8s.io": "api/admissionregistration",
    "apidiscovery.k8s.io": "api/apidiscovery",
    "internal.apiserver.k8s.io": "api/apiserverinternal",
    "apps": "api/apps",
    "authentication.k8s.io": "api/authentication",
    "authorization.k8s.io": "api/authorization",
    "autoscaling": "api/autoscaling",
    "batch": "api/batch",
    "certificates.k8s.io": "api/certificates",
    "coordination.k8s.io": "api/coordination",
    "discovery.k8s.io": "api/discovery",
    "events.k8s.io": "api/events",
    "extensions": "api/extensions",
    "flowcontrol.apiserver.k8s.io": "api/flowcontrol",
    "imagepolicy.k8s.io": "api/imagepolicy",
    "networking.k8s.io": "api/networking",
    "node.k8s.io": "api/node",
    "policy": "api/policy",
    "rbac.authorization.k8s.io": "api/rbac",
    "resource.k8s.io": "api/resource",
    "scheduling.k8s.io": "api/scheduling",
    "storage.k8s.io": "api/storage",
    "storagemigration.k8s.io": "api/storagemigration",
    "apiextensions.k8s.io": "apiextensions_apiserver/pkg/apis/apiextensions",
    "apiregistration.k8s.io": "kube_aggregator/pkg/apis/apiregistration",
    "metrics.k8s.io": "metrics/pkg/apis/metrics",
    "custom.metrics.k8s.io": "metrics/pkg/apis/custom_metrics",
    "external.metrics.k8s.io": "metrics/pkg/apis/external_metrics",
    "meta.k8s.io": "apimachinery/pkg/apis/meta",
}

# Field JSON names that neither the type's own k8s-openapi definition, a same-named definition in
# another version, nor the unique global spelling settle. Keyed by "package.Message.prost_field".
JSON_NAME_OVERRIDES = {
    "k8s.io.api.core.v1.PodLogOptions.insecure_skip_tls_verify_backend": "insecureSkipTLSVerifyBackend",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.ConversionRequest.desired_api_version": "desiredAPIVersion",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.ConversionRequest.desired_api_version": "desiredAPIVersion",
}

# k8s-pb packages left out: apimachinery's test-only API group.
SKIP_PACKAGES = {"k8s.io.apimachinery.pkg.apis.testapigroup.v1"}

# Message names k8s-openapi does not have and prost's CamelCase would get wrong.
# Keyed by package-qualified prost name.
TYPE_NAME_OVERRIDES = {}


def registry_dirs():
    env = os.environ.get("PROTOGEN_REGISTRY")
    if env:
        return [env]
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    return sorted(glob.glob(os.path.join(home, "registry", "src", "*")))


def find_crate(name):
    for d in registry_dirs():
        p = os.path.join(d, name)
        if os.path.isdir(p):
            return p
    print(
        f"protogen: {name} is not in the local cargo registry; fetch it with `cargo fetch` in a "
        f"scratch project depending on it (see tools/protogen/README.md)",
        file=sys.stderr,
    )
    sys.exit(SOURCES_MISSING)


def norm(s):
    return re.sub(r"[^a-z0-9]", "", s.lower())


# === k8s-pb ===

STRUCT_RE = re.compile(r"^pub struct (\w+) \{\}|^pub struct (\w+) \{\n(.*?)^\}", re.M | re.S)
FIELD_RE = re.compile(r"#\[prost\(([^\]]*)\)\]\s*pub (?:r#)?(\w+):\s*(.*?),\s*(?=#\[prost|$)", re.S)


def package_of(mod_dir):
    return "k8s.io." + mod_dir.replace("/", ".")


def resolve_type(mod_dir, rust_ty):
    """Map a prost field type (`Option<super::super::x::Y>`) to (module dir, prost name)."""
    ty = re.sub(r"\s+", "", rust_ty).replace(",>", ">")
    if ty.startswith("::prost::alloc::collections::BTreeMap<"):
        ty = ty[len("::prost::alloc::collections::BTreeMap<") : -1]
        ty = ty.split(",", 1)[1]
    for wrap in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        while ty.startswith(wrap):
            ty = ty[len(wrap) : -1]
    parts = ty.split("::")
    mod = mod_dir.split("/")
    while parts[0] == "super":
        mod = mod[:-1]
        parts = parts[1:]
    mod = mod + parts[:-1]
    return "/".join(mod), parts[-1]


def parse_k8s_pb(src):
    messages = {}  # (mod_dir, prost_name) -> list of fields
    for path in glob.glob(os.path.join(src, "**", "mod.rs"), recursive=True):
        mod_dir = os.path.relpath(os.path.dirname(path), src)
        text = open(path, encoding="utf-8").read()
        text = "\n".join(l for l in text.split("\n") if not l.strip().startswith("///"))
        for m in STRUCT_RE.finditer(text):
            name = m.group(1) or m.group(2)
            body = m.group(3) or ""
            fields = []
            for f in FIELD_RE.finditer(body + "\n"):
                attrs, fname, fty = f.group(1), f.group(2), f.group(3)
                tag = int(re.search(r'tag = "(\d+)"', attrs).group(1))
                mm = re.match(r'btree_map = "string, (\w+)"', attrs)
                if mm:
                    label, kind = "Map", mm.group(1)
                else:
                    kind = attrs.split(",")[0].strip()
                    label = "Repeated" if "repeated" in attrs else "Optional"
                    if kind == 'bytes = "vec"':
                        kind = "bytes"
                target = resolve_type(mod_dir, fty) if kind == "message" else None
                fields.append({"name": fname, "tag": tag, "kind": kind, "label": label, "target": target})
            messages[(mod_dir, name)] = sorted(fields, key=lambda x: x["tag"])
    return messages


# === k8s-openapi ===

def parse_openapi(src):
    defs = {}  # package -> {real name: [json names]}
    resources = []  # (api_version, group, version, kind, package)
    for path in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
        text = open(path, encoding="utf-8").read()
        m = re.search(r"^// Generated from definition io\.k8s\.(\S+)\.(\w+)$", text, re.M)
        if not m:
            continue
        pkg = "k8s.io." + m.group(1).replace("-", "_")
        name = m.group(2)
        names = re.findall(r'^\s*"([^"]+)" => Field::Key_\w+,$', text, re.M)
        defs.setdefault(pkg, {})[name] = names
        r = re.search(
            r'const API_VERSION: &\'static str = "([^"]*)";\s*const GROUP: &\'static str = "([^"]*)";'
            r'\s*const KIND: &\'static str = "([^"]*)";\s*const VERSION: &\'static str = "([^"]*)";',
            text,
        )
        if r:
            resources.append((r.group(1), r.group(2), r.group(4), r.group(3), pkg))
    return defs, resources


def heck_snake(name):
    """prost's field-name conversion (heck's snake_case) of a proto/JSON field name."""
    words = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        if not part:
            continue
        start, mode = 0, None
        for i, c in enumerate(part[:-1]):
            nxt = part[i + 1]
            next_mode = "lower" if c.islower() else "upper" if c.isupper() else mode
            if next_mode == "lower" and nxt.isupper():
                words.append(part[start : i + 1])
                start, mode = i + 1, None
            elif mode == "upper" and c.isupper() and nxt.islower():
                words.append(part[start:i])
                start, mode = i, next_mode
            else:
                mode = next_mode
        words.append(part[start:])
    return "_".join(w.lower() for w in words if w)


def lower_camel(snake):
    parts = snake.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def build(report):
    pb = parse_k8s_pb(os.path.join(find_crate(K8S_PB), "src"))
    pb = {k: v for k, v in pb.items() if package_of(k[0]) not in SKIP_PACKAGES}
    defs, resources = parse_openapi(os.path.join(find_crate(K8S_OPENAPI), "src", OPENAPI_FEATURE))

    by_norm_name = {}  # norm(type name) -> {real spelling}
    for pkg, d in defs.items():
        for name in d:
            by_norm_name.setdefault(norm(name), set()).add(name)
    pool = {}  # norm(json name) -> {json spellings}
    for d in defs.values():
        for names in d.values():
            for n in names:
                pool.setdefault(norm(n), set()).add(n)

    # Real (Go) message names.
    real = {}
    for (mod_dir, pname) in pb:
        pkg = package_of(mod_dir)
        key = pkg + "." + pname
        own = [n for n in defs.get(pkg, {}) if norm(n) == norm(pname)]
        if key in TYPE_NAME_OVERRIDES:
            real[(mod_dir, pname)] = TYPE_NAME_OVERRIDES[key]
            how = "override"
        elif own:
            real[(mod_dir, pname)] = own[0]
            how = "openapi"
        elif len(by_norm_name.get(norm(pname), ())) == 1:
            real[(mod_dir, pname)] = next(iter(by_norm_name[norm(pname)]))
            how = "openapi-other-version"
        else:
            real[(mod_dir, pname)] = pname
            how = "prost" if not by_norm_name.get(norm(pname)) else "AMBIGUOUS"
        if report and how not in ("openapi",):
            print(f"type {key} -> {real[(mod_dir, pname)]} [{how}]")

    full = {k: package_of(k[0]) + "." + real[k] for k in pb}
    order = sorted(full.values())
    assert len(order) == len(set(order)), "duplicate message names"
    index = {n: i for i, n in enumerate(order)}
    by_full = {full[k]: k for k in pb}

    def is_inline(f, known, depth):
        # A message field whose name JSON does not know but whose own fields (recursively through
        # further embedded structs) JSON does know is a Go embedded struct.
        if f["kind"] != "message" or f["label"] != "Optional" or not known or norm(f["name"]) in known:
            return False
        tkey = f["target"]
        if SPECIAL.get(full[tkey]) is not None or not pb[tkey] or depth > 4:
            return False
        return all(norm(t["name"]) in known or is_inline(t, known, depth + 1) for t in pb[tkey])

    out_msgs = []
    problems = []
    for fname in order:
        key = by_full[fname]
        mod_dir, pname = key
        pkg = package_of(mod_dir)
        rname = real[key]
        own = defs.get(pkg, {}).get(rname)
        others = [d[rname] for p, d in defs.items() if p != pkg and rname in d]
        special = SPECIAL.get(fname, "None")
        fields = pb[key]
        if (
            special == "None"
            and rname in STRING_LIST_NAMES
            and len(fields) == 1
            and fields[0]["name"] == "items"
            and fields[0]["kind"] == "string"
        ):
            special = "StringList"
        known = {norm(j) for j in (own or [])} | {norm(j) for o in others for j in o}
        out_fields = []
        for f in fields:
            n = norm(f["name"])
            if is_inline(f, known, 0):
                tkey = f["target"]
                if True:
                    # A Go embedded struct (`json:",inline"`): its own message on the wire, its
                    # fields flattened into this object in JSON.
                    if report:
                        print(f"field {fname}.{f['name']} -> (inline {full[tkey]})")
                    out_fields.append(("", f["tag"], f"Msg({index[full[tkey]]})", "Inline"))
                    continue
            ovr = JSON_NAME_OVERRIDES.get(fname + "." + f["name"])
            cands = [j for j in (own or []) if norm(j) == n]
            assert len(cands) <= 1, (fname, f["name"], cands)
            how = "own"
            if ovr:
                json, how = ovr, "override"
            elif cands:
                json = cands[0]
            else:
                cands = sorted({j for o in others for j in o if norm(j) == n})
                how = "other-version"
                if len(cands) != 1:
                    cands = sorted(c for c in pool.get(n, ()) if heck_snake(c) == f["name"])
                    how = "global"
                if len(cands) == 1:
                    json = cands[0]
                elif not cands:
                    json, how = lower_camel(f["name"]), "camel"
                else:
                    lc = lower_camel(f["name"])
                    json = lc if lc in cands else cands[0]
                    how = "AMBIGUOUS " + ",".join(cands)
            if special == "None" and how not in ("own",):
                if report:
                    print(f"field {fname}.{f['name']} -> {json} [{how}]")
                if how.startswith("AMBIGUOUS"):
                    problems.append(f"{fname}.{f['name']}: {how}")
            if f["kind"] == "message":
                ty = f"Msg({index[full[f['target']]]})"
            else:
                ty = {
                    "string": "Str",
                    "bytes": "Bytes",
                    "int32": "Int32",
                    "int64": "Int64",
                    "bool": "Bool",
                    "double": "Double",
                }[f["kind"]]
            out_fields.append((json, f["tag"], ty, f["label"]))
        out_msgs.append((fname, special, out_fields))

    # apiVersion -> package, checked against k8s-openapi's resources.
    packages = {package_of(k[0]) for k in pb}
    gvs = []
    for group, d in GROUP_DIRS.items():
        for pkg in sorted(packages):
            prefix = package_of(d) + "."
            if pkg.startswith(prefix) and "." not in pkg[len(prefix) :]:
                version = pkg[len(prefix) :]
                gvs.append(((group + "/" if group else "") + version, pkg))
    gv_map = dict(gvs)
    for api_version, _group, _version, kind, pkg in resources:
        if gv_map.get(api_version) != pkg and pkg != "k8s.io.apimachinery.pkg.apis.meta.v1":
            problems.append(f"resource {api_version} {kind}: k8s-openapi says {pkg}, table says {gv_map.get(api_version)}")
        elif pkg + "." + kind not in index:
            problems.append(f"resource {api_version} {kind}: no protobuf message {pkg}.{kind}")
    return out_msgs, sorted(gvs), problems


def render(msgs, gvs):
    o = []
    o.append(f"// @generated by tools/protogen/protogen.py from {K8S_PB} (Kubernetes {K8S_PB_KUBE}) and")
    o.append(f"// {K8S_OPENAPI} ({OPENAPI_FEATURE}). Do not edit by hand; rerun the generator.")
    o.append("")
    o.append("use crate::desc::{Label::*, Message, Special, Ty::*, f};")
    o.append("")
    o.append(f"/// Kubernetes {K8S_PB_KUBE} protobuf messages, sorted by full name; `Msg(i)` indexes this.")
    o.append(f"pub(crate) static MESSAGES: [Message; {len(msgs)}] = [")
    for name, special, fields in msgs:
        o.append(f'    Message {{ name: "{name}", special: Special::{special}, fields: &[')
        for json, tag, ty, label in fields:
            o.append(f'        f("{json}", {tag}, {ty}, {label}),')
        o.append("    ] },")
    o.append("];")
    o.append("")
    o.append("/// `apiVersion` -> protobuf package, sorted by `apiVersion`.")
    o.append(f"pub(crate) static GROUP_VERSIONS: [(&str, &str); {len(gvs)}] = [")
    for gv, pkg in gvs:
        o.append(f'    ("{gv}", "{pkg}"),')
    o.append("];")
    return "\n".join(o) + "\n"


def main():
    args = sys.argv[1:]
    msgs, gvs, problems = build("--report" in args)
    for p in problems:
        print("protogen: problem:", p, file=sys.stderr)
    if problems:
        sys.exit(2)
    text = render(msgs, gvs)
    if "--check" in args:
        cur = open(OUT, encoding="utf-8").read() if os.path.exists(OUT) else ""
        if cur != text:
            sys.exit(f"protogen: {OUT} is stale; run python3 tools/protogen/protogen.py")
        print("protogen: table is up to date")
        return
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"protogen: wrote {len(msgs)} messages, {sum(len(m[2]) for m in msgs)} fields to {OUT}")


if __name__ == "__main__":
    main()
