"""Headroom the node autoscaler understands: a CapacityBuffer (autoscaling.x-k8s.io/v1alpha1).

Where the cluster serves the API (Cluster Autoscaler, Karpenter; found by discovery), swell keeps
one CapacityBuffer per ScalingRecipe, `swell-<recipe>`, in the recipe's namespace: `scalableRef`
to the target (the autoscaler derives the pod shape from it) and `replicas` = the placeholders
headroom.wanted asks for. The autoscaler then keeps that much room without any pod; swell creates
no placeholder. Elsewhere the runtime falls back to headroom placeholder pods.
"""

from __future__ import annotations

from swell.clusters.kubernetes import api, headroom, scalingrecipe

KIND = "CapacityBuffer"
PLURAL = "capacitybuffers"


def name_of(spec: scalingrecipe.Spec) -> str:
    return f"swell-{scalingrecipe.service_name(spec.name)}"


def body(spec: scalingrecipe.Spec, replicas: int) -> api.Obj:
    group = spec.target.api_version.rpartition("/")[0]
    meta: api.Obj = {
        "name": name_of(spec),
        "namespace": spec.namespace,
        "labels": {"app.kubernetes.io/managed-by": "swell", "swell.dev/recipe": spec.name},
    }
    if spec.uid:  # same namespace: the ScalingRecipe owns it, deleting it removes the buffer
        meta["ownerReferences"] = [
            {"apiVersion": scalingrecipe.API_VERSION, "kind": scalingrecipe.KIND, "name": spec.name,
             "uid": spec.uid, "controller": True}
        ]  # fmt: skip
    return {
        "apiVersion": api.BUFFER_API,
        "kind": KIND,
        "metadata": meta,
        "spec": {
            "scalableRef": {"apiGroup": group, "kind": spec.target.kind, "name": spec.target.name},
            "replicas": replicas,
        },
    }


async def reconcile(client: api.Api, spec: scalingrecipe.Spec, want: int, *, act: bool) -> headroom.Report:
    """Keep the recipe's CapacityBuffer at `want` replicas (deleted at 0); report it as headroom."""
    name = name_of(spec)
    have = await client.get_buffer(spec.namespace, name)
    now = int(((have or {}).get("spec") or {}).get("replicas", 0)) if have else 0
    if act:
        if want == 0 and have is not None:
            await client.delete_buffer(spec.namespace, name)
        elif want > 0 and (have is None or now != want):
            await client.put_buffer(spec.namespace, body(spec, want), exists=have is not None)
    reason = (
        f"CapacityBuffer {name}: the node autoscaler keeps room for {want} replica(s) of {spec.target.name}"
        if want
        else "no headroom asked for"
    )
    return headroom.Report(desired=want, running=0, pending=0, preemptions=0, reason=reason)
