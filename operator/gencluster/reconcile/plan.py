"""Diff the rendered children against what exists: what to apply, what to keep, what to delete.

A child is re-applied only when its rendered form changed (a digest in an annotation) or a field
the control loop carries (replicas, the persisted batch size) differs; a child is deleted when
the spec no longer renders it and this GenerationCluster owns it. Credentials are reused from the
existing Secrets and generated only when missing. No I/O: the edge lists, applies and deletes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets as pysecrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..api.spec import GenerationClusterSpec
from ..render import names
from ..render.children import Observed, Secrets, carried_fields, without_carried
from ..render.redis import RedisAuth, generate_redis_auth, redis_auth_from_secret
from ..render.workload import ADMIN_TOKEN_KEY, BATCHING_KEY

ChildKey = tuple[str, str]  # (kind, name)
Children = Mapping[ChildKey, dict[str, Any]]

# Every kind the operator creates; listed by label to find what exists and what is stale.
CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "Secret"), ("v1", "ConfigMap"), ("v1", "Service"), ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"), ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)


def key(obj: Mapping[str, Any]) -> ChildKey:
    return str(obj["kind"]), str(obj["metadata"]["name"])


def describe(obj: Mapping[str, Any]) -> str:
    """Kind/name, as Events and logs name a child."""
    kind, name = key(obj)
    return f"{kind}/{name}"


def validation_message(err: ValidationError) -> str:
    """A spec's validation errors as `spec.path: message; ...` (the status and Event text)."""
    parts = []
    for e in err.errors():
        path = ".".join(str(p) for p in ("spec", *e["loc"]))
        parts.append(f"{path}: {e['msg']}")
    return "; ".join(parts)


def decode_secret(secret: Mapping[str, Any] | None) -> dict[str, str]:
    """A Secret's data, decoded; undecodable values are left out (they are regenerated)."""
    out: dict[str, str] = {}
    for k, v in ((secret or {}).get("data") or {}).items():
        try:
            out[k] = base64.b64decode(v).decode()
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
            continue
    return out


def ensure_secrets(name: str, spec: GenerationClusterSpec, existing: Children,
                   new_token: Callable[[], str] = lambda: pysecrets.token_urlsafe(32),
                   new_redis_auth: Callable[[], RedisAuth] = generate_redis_auth) -> Secrets:
    """Reuse generated credentials; generate only what does not exist yet."""
    admin = decode_secret(existing.get(("Secret", names.admin_secret_name(name)))).get(ADMIN_TOKEN_KEY)
    redis_auth: RedisAuth | None = None
    if spec.cache.mode != "disabled":
        data = decode_secret(existing.get(("Secret", names.redis_secret_name(name))))
        redis_auth = redis_auth_from_secret(data) if data else new_redis_auth()
    return Secrets(admin_token=admin or new_token(), redis_auth=redis_auth)


@dataclass(frozen=True)
class RedisTLS:
    """spec.cache.tls as read from the user's Secret: its CA (PEM), or why it cannot be used."""

    ca_pem: str | None = None
    problem: str | None = None  # set: the cache is reported not ready (CacheTLSSecretInvalid)
    digest: str | None = None  # of the keys Redis mounts: a renewal changes it


PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def redis_tls(spec: GenerationClusterSpec, namespace: str,
              secret: Mapping[str, Any] | None) -> RedisTLS | None:
    """Check the Secret spec.cache.tls names (None: TLS off, or no cache). `secret` is what a
    `get` returned (None: not found). Every key Redis mounts must be there and non-empty, and
    ca.crt must be a PEM certificate (the operator and the workload trust only it)."""
    tls = spec.cache.tls
    if tls is None or spec.cache.mode == "disabled":
        return None
    where = f"Secret {namespace}/{tls.secret_name} (spec.cache.tls.secretName)"
    if secret is None:
        return RedisTLS(problem=f"{where} not found; create a kubernetes.io/tls "
                        f"Secret with {', '.join(names.TLS_SECRET_KEYS)}")
    raw = secret.get("data") or {}
    data = decode_secret(secret)
    for k in names.TLS_SECRET_KEYS:
        if k not in raw:
            return RedisTLS(problem=f"{where} lacks key {k}")
        if not data.get(k, "").strip():
            return RedisTLS(problem=f"{where}: key {k} is empty or not text")
    ca = data[names.TLS_CA_KEY]
    if PEM_CERTIFICATE not in ca:
        return RedisTLS(problem=f"{where}: key {names.TLS_CA_KEY} holds no PEM certificate")
    return RedisTLS(ca_pem=ca, digest=content_hash({k: data[k] for k in names.TLS_SECRET_KEYS}))


def observed(name: str, existing: Children, redis_statefulset_replicas: int | None,
             tls: RedisTLS | None = None) -> Observed:
    """The fields of existing children that rendering carries over (the loop owns them), and
    what the edge read elsewhere. `tls`: spec.cache.tls as read now; while its Secret is missing
    or invalid the Redis pods keep the certificate digest they run with (a user's mistake does
    not roll a working cache into pods that cannot start)."""
    deployment = existing.get(("Deployment", names.workload_name(name))) or {}
    runtime_cm = existing.get(("ConfigMap", names.runtime_configmap_name(name))) or {}
    statefulset = existing.get(("StatefulSet", names.redis_statefulset_name(name))) or {}
    usable = tls if tls is not None and tls.problem is None else None
    return Observed(
        deployment_replicas=(deployment.get("spec") or {}).get("replicas"),
        persisted_batching=(runtime_cm.get("data") or {}).get(BATCHING_KEY),
        redis_statefulset_replicas=redis_statefulset_replicas,
        redis_tls_hash=usable.digest if usable else
        _template_annotation(statefulset, names.REDIS_TLS_HASH_ANNOTATION),
    )


def _template_annotation(obj: Mapping[str, Any], key: str) -> str | None:
    template = (obj.get("spec") or {}).get("template") or {}
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(key)
    return value if isinstance(value, str) else None


def content_hash(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def owned_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    return any(ref.get("uid") == owner_uid for ref in obj["metadata"].get("ownerReferences") or [])


def _unstamp(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    annotations = meta.get("annotations")
    if annotations and names.HASH_ANNOTATION in annotations:
        del annotations[names.HASH_ANNOTATION]
        if not annotations:
            del meta["annotations"]


@dataclass(frozen=True)
class ChildPlan:
    """The writes one reconcile makes: children to apply (stamped with their digest, in render
    order), children left as they are, and owned children the spec no longer renders."""

    apply: list[dict[str, Any]]
    unchanged: list[ChildKey]
    delete: list[dict[str, Any]]


def plan_children(desired: Iterable[dict[str, Any]], existing: Children,
                  owner_uid: str) -> ChildPlan:
    """`desired` already carries its owner reference (the edge adopts it); each is stamped with
    the digest of its rendered form, without the fields the loop carries."""
    apply: list[dict[str, Any]] = []
    unchanged: list[ChildKey] = []
    wanted: set[ChildKey] = set()
    for obj in desired:
        k = key(obj)
        wanted.add(k)
        _unstamp(obj)  # planning an object twice gives the same digest
        digest = content_hash(without_carried(obj))
        obj["metadata"].setdefault("annotations", {})[names.HASH_ANNOTATION] = digest
        current = existing.get(k)
        if (current is not None
                and (current["metadata"].get("annotations") or {}).get(names.HASH_ANNOTATION) == digest
                and carried_fields(current) == carried_fields(obj)):
            unchanged.append(k)
        else:
            apply.append(obj)
    delete = [o for k, o in existing.items() if k not in wanted and owned_by(o, owner_uid)]
    return ChildPlan(apply, unchanged, delete)
