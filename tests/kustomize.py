"""A small kustomize renderer for the tests: the subset deploy/k8s uses, refusing anything else.

Handles `resources` (files and directories with a kustomization.yaml), `namespace`, `images` and `patches`
given as inline JSON 6902 operations with a `target` (group, kind, name). An unknown field is an error, so a
manifest never relies on a feature these tests would silently ignore.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}
# Objects that live outside any namespace: the namespace transformer leaves them alone.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume"}


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not handle, or a patch does not apply."""


def render(directory: Path) -> list[dict[str, Any]]:
    """Every object the kustomization in `directory` produces, as kustomize build would."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            objects += render(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch in spec.get("patches", []):
        _apply_patch(objects, patch, directory)
    for image in spec.get("images", []):
        _set_image(objects, image)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] in CLUSTER_SCOPED:
                if obj["kind"] == "Namespace":
                    obj["metadata"]["name"] = spec["namespace"]
            else:
                obj["metadata"]["namespace"] = spec["namespace"]
    return objects


def _matches(obj: dict[str, Any], target: dict[str, str]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return (
        target.get("kind", obj["kind"]) == obj["kind"]
        and target.get("name", obj["metadata"]["name"]) == obj["metadata"]["name"]
        and target.get("group", group) == group
    )


def _apply_patch(objects: list[dict[str, Any]], patch: dict[str, Any], directory: Path) -> None:
    if set(patch) != {"target", "patch"}:
        raise KustomizeError(f"{directory}: only inline JSON 6902 patches with a target are handled: {patch}")
    operations = yaml.safe_load(patch["patch"])
    targets = [obj for obj in objects if _matches(obj, patch["target"])]
    if not targets:
        raise KustomizeError(f"{directory}: patch target {patch['target']} matches nothing")
    for obj in targets:
        for operation in operations:
            _apply_operation(obj, operation)


def _apply_operation(obj: dict[str, Any], operation: dict[str, Any]) -> None:
    op, path = operation["op"], operation["path"]
    if op not in {"add", "replace", "remove"}:
        raise KustomizeError(f"unsupported JSON patch operation {op!r}")
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) and last != "-" else last
    if op == "replace" and (key not in node if isinstance(node, dict) else key >= len(node)):
        raise KustomizeError(f"replace of a missing path {path} in {obj['kind']}/{obj['metadata']['name']}")
    if op == "remove":
        del node[key]
    elif isinstance(node, list) and op == "add":
        node.insert(len(node) if key == "-" else key, copy.deepcopy(operation["value"]))
    else:
        node[key] = copy.deepcopy(operation["value"])


def _set_image(objects: list[dict[str, Any]], image: dict[str, str]) -> None:
    for container in containers(objects):
        name, _, tag = container["image"].partition(":")
        if name == image["name"]:
            container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template's spec of a Deployment or Job, else None."""
    if obj["kind"] in {"Deployment", "Job"}:
        spec: dict[str, Any] = obj["spec"]["template"]["spec"]
        return spec
    return None


def containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every container of every pod template."""
    return [c for obj in objects if (spec := pod_spec(obj)) for c in spec["containers"]]
