#!/usr/bin/env python3
"""Extract the subset of the official PVE API schema that the lab serves.

Why: the lab validates every request and every response against the official schema, and
its tests must run without ../shared. This script keeps only the paths the lab serves and
only the machine-checkable parts of each parameter (no description texts), so the vendored
file stays small and reviewable.

Usage: python3 crates/pve-lab/schema/extract.py [../shared/reference/pve-api-schema.json]
Writes crates/pve-lab/schema/pve-api-subset.json next to this script.
"""

import json
import os
import sys

PATHS = [
    "/version",
    "/access/ticket",
    "/access/permissions",
    "/nodes",
    "/nodes/{node}",
    "/nodes/{node}/status",
    "/nodes/{node}/network",
    "/cluster/resources",
    "/cluster/nextid",
    "/cluster/status",
    "/nodes/{node}/qemu",
    "/nodes/{node}/qemu/{vmid}",
    "/nodes/{node}/qemu/{vmid}/config",
    "/nodes/{node}/qemu/{vmid}/pending",
    "/nodes/{node}/qemu/{vmid}/clone",
    "/nodes/{node}/qemu/{vmid}/template",
    "/nodes/{node}/qemu/{vmid}/migrate",
    "/nodes/{node}/qemu/{vmid}/resize",
    "/nodes/{node}/qemu/{vmid}/status",
    "/nodes/{node}/qemu/{vmid}/status/current",
    "/nodes/{node}/qemu/{vmid}/status/start",
    "/nodes/{node}/qemu/{vmid}/status/stop",
    "/nodes/{node}/qemu/{vmid}/status/shutdown",
    "/nodes/{node}/qemu/{vmid}/status/reboot",
    "/nodes/{node}/qemu/{vmid}/agent",
    "/nodes/{node}/qemu/{vmid}/agent/ping",
    "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
    "/nodes/{node}/qemu/{vmid}/agent/exec",
    "/nodes/{node}/qemu/{vmid}/agent/exec-status",
    "/nodes/{node}/qemu/{vmid}/agent/file-read",
    "/nodes/{node}/qemu/{vmid}/cloudinit",
    "/nodes/{node}/qemu/{vmid}/cloudinit/dump",
    "/nodes/{node}/tasks",
    "/nodes/{node}/tasks/{upid}",
    "/nodes/{node}/tasks/{upid}/status",
    "/nodes/{node}/tasks/{upid}/log",
    "/nodes/{node}/storage",
    "/nodes/{node}/storage/{storage}",
    "/nodes/{node}/storage/{storage}/content",
    "/nodes/{node}/storage/{storage}/content/{volume}",
    "/nodes/{node}/storage/{storage}/download-url",
]

# Keys that carry rules; everything else (description, typetext, verbose_description,
# format_description, ...) is prose and is dropped.
KEEP = {
    "type", "format", "pattern", "enum", "minimum", "maximum", "optional", "default",
    "maxLength", "minLength", "items", "requires", "alias", "default_key", "properties",
    "additionalProperties", "keyAlias",
}


def strip(schema):
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key not in KEEP:
            continue
        if key == "properties":
            out[key] = {name: strip(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = strip(value)
        elif key == "format" and isinstance(value, dict):
            out[key] = {name: strip(sub) for name, sub in value.items()}
        else:
            out[key] = value
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    source = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "..", "..", "..", "shared", "reference", "pve-api-schema.json")
    with open(source, encoding="utf-8") as handle:
        full = json.load(handle)
    subset = {}
    for path in PATHS:
        methods = full[path]
        subset[path] = {}
        for method, info in sorted(methods.items()):
            entry = {
                "parameters": strip(info.get("parameters", {})),
                "returns": strip(info.get("returns", {})),
            }
            permissions = info.get("permissions")
            if permissions is not None:
                entry["permissions"] = {
                    key: value for key, value in permissions.items() if key != "description"
                }
            for flag in ("allowtoken", "protected"):
                if flag in info:
                    entry[flag] = info[flag]
            subset[path][method] = entry
    target = os.path.join(here, "pve-api-subset.json")
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(subset, handle, indent=1, sort_keys=True)
        handle.write("\n")


if __name__ == "__main__":
    main()
