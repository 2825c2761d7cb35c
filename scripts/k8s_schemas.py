"""Write self-contained Kubernetes JSON schemas for kubeconform, offline, from the PyPI package kubernetes-validate.

kubeconform normally downloads its schemas from GitHub, which this machine (and CI) cannot reach. The PyPI
package ``kubernetes-validate`` ships the same OpenAPI-derived schemas per Kubernetes version, but as
``<kind>-<group>-<version>.json`` files whose ``$ref``s point into a shared ``/api/_definitions.json``,
which kubeconform cannot resolve from a local path. This script inlines them: for every kind it copies the
kind's schema, rewrites each ``$ref`` to ``#/$defs/...`` and adds the transitively referenced definitions
under ``$defs`` (recursive definitions stay references, so nothing is expanded infinitely).

    python scripts/k8s_schemas.py OUT_DIR [--kubernetes-version 1.34.0] [--kinds service-v1,...]

writes ``OUT_DIR/v<version>-standalone-strict/<kind><suffix>.json``: kubeconform's own layout, used with
``-schema-location 'OUT_DIR/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json'``.
Without ``--kinds`` every top-level kind (a schema with ``x-kubernetes-group-version-kind``) is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REF_PREFIX = "/api/_definitions.json#/$defs/"


def source_dir(version: str) -> Path:
    """kubernetes-validate's strict schemas of ``version`` (e.g. ``1.34.0``)."""
    import kubernetes_validate

    d = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    if not d.is_dir():
        raise SystemExit(f"kubernetes-validate has no schemas for {version}: {d}")
    return d


def _rewrite(node: Any, found: set[str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                name = v[len(REF_PREFIX) :] if v.startswith(REF_PREFIX) else v.removeprefix("#/$defs/")
                found.add(name)
                out[k] = "#/$defs/" + name
            else:
                out[k] = _rewrite(v, found)
        return out
    if isinstance(node, list):
        return [_rewrite(x, found) for x in node]
    return node


def standalone(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every referenced definition inlined under ``$defs``."""
    pending: set[str] = set()
    root = _rewrite(schema, pending)
    out_defs: dict[str, Any] = {}
    while pending:
        name = pending.pop()
        if name in out_defs:
            continue
        if name not in defs:
            raise KeyError(f"missing definition {name}")
        found: set[str] = set()
        out_defs[name] = _rewrite(defs[name], found)
        pending |= found - out_defs.keys()
    if out_defs:
        root["$defs"] = dict(sorted(out_defs.items()))
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--kubernetes-version", default="1.34.0")
    ap.add_argument(
        "--kinds", default="", help="comma-separated file stems (service-v1, deployment-apps-v1); default all"
    )
    args = ap.parse_args(argv)
    src = source_dir(args.kubernetes_version)
    defs = json.loads((src / "_definitions.json").read_text())["$defs"]
    out = args.out / f"v{args.kubernetes_version}-standalone-strict"
    out.mkdir(parents=True, exist_ok=True)
    wanted = {k.strip() for k in args.kinds.split(",") if k.strip()}
    n = 0
    for f in sorted(src.glob("*.json")):
        if f.name.startswith("_") or f.name == "all.json" or (wanted and f.stem not in wanted):
            continue
        schema = json.loads(f.read_text())
        if not wanted and "x-kubernetes-group-version-kind" not in schema:
            continue
        (out / f.name).write_text(json.dumps(standalone(schema, defs), separators=(",", ":")))
        n += 1
    if wanted and n != len(wanted):
        print(f"only {n} of {len(wanted)} requested kinds found in {src}", file=sys.stderr)
        return 1
    print(f"wrote {n} schemas to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
