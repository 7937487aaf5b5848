"""The "deploy raw Kubernetes YAML" step, as the runner sees it.

The work is done by `cephalo_agent.kubernetes`, imported only here and only for this step:
it needs kubernetes-asyncio, so the standalone bundle (SSH hosts) reports a clear error.
Cluster settings are read from the step's properties, then from variables (a target's
values arrive as variables); the token should be a sensitive variable.
"""

from __future__ import annotations

import asyncio

from cephalo_agent.steprunner.action import Action
from cephalo_agent.steprunner.errors import StepFailed
from cephalo_agent.steprunner.output import StepOutput

DEFAULT_TIMEOUT_SECONDS = 180.0


def _value(action: Action, name: str) -> str | None:
    return action.setting(name) or action.variable(f"Cephalo.{name}", f"Octopus.{name}")


def deploy_raw_yaml(action: Action, output: StepOutput) -> None:
    try:
        from cephalo_agent.kubernetes.deploy import Cluster, deploy_yaml
    except ImportError:
        raise StepFailed(
            "Kubernetes steps run on a worker with the Cephalo agent installed; "
            "kubernetes-asyncio is not available here."
        ) from None
    from cephalo_common.variables.evaluator import VariableDictionary

    url = _value(action, "Action.Kubernetes.ClusterUrl")
    manifest = action.setting("Action.KubernetesContainers.CustomResourceYaml")
    if not url or not manifest:
        raise StepFailed("The step needs a cluster URL and the YAML to apply.")
    rendered = VariableDictionary(action.variables).render(manifest)
    if rendered.text is None:
        raise StepFailed("Variable substitution in the manifest was refused.")
    timeout = _value(action, "Action.Kubernetes.DeploymentTimeout") or ""
    cluster = Cluster(
        url=url,
        namespace=_value(action, "Action.Kubernetes.Namespace") or "default",
        token=_value(action, "Action.Kubernetes.Token"),
        certificate_authority=_value(action, "Action.Kubernetes.CertificateAuthority"),
        client_certificate=_value(action, "Action.Kubernetes.ClientCertificate"),
        client_key=_value(action, "Action.Kubernetes.ClientCertificateKey"),
        skip_tls_verify=(_value(action, "Action.Kubernetes.SkipTlsVerification") or "").lower()
        == "true",
    )
    wait = (_value(action, "Action.Kubernetes.ResourceStatusCheck") or "True").lower() != "false"
    asyncio.run(
        deploy_yaml(
            cluster,
            rendered.text,
            output,
            timeout_seconds=float(timeout) if timeout.strip() else DEFAULT_TIMEOUT_SECONDS,
            wait=wait,
        )
    )
