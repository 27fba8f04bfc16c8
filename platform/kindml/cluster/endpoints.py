"""Names and in-cluster addresses of the kind target, in one place.

They must agree with ``manifests/`` (a unit test checks the ConfigMap
``kindml-runtime-env`` against :data:`RUNNER_ENV`).
"""

from __future__ import annotations

CLUSTER_NAME = "kindml"
KUBE_CONTEXT = f"kind-{CLUSTER_NAME}"

NAMESPACE = "kindml"
MONITORING_NAMESPACE = "kindml-monitoring"
KFP_NAMESPACE = "kubeflow"

PREDICTOR_PORT = 8080
# the Service behind the host's model endpoint (UI_PORTS["model-endpoint"]); deploy points it at its model
MODEL_ENDPOINT_SERVICE = "kindml-model-endpoint"
PREDICTOR_SERVICE_ACCOUNT = "default"

MLFLOW_URI = f"http://mlflow.{NAMESPACE}.svc:5000"
REDIS_CONNECTION = f"redis.{NAMESPACE}.svc:6379"
PROMETHEUS_URL = f"http://prometheus-operated.{MONITORING_NAMESPACE}.svc:9090"
# The Feast operator names the registry Service of FeatureStore <name> "feast-<name>-registry"
# and publishes it in status.serviceHostnames.registry as <svc>.<ns>.svc.cluster.local:80
# (gRPC, no TLS). `up` waits for exactly this value (plan step platform:feast-registry).
FEATURE_STORE_NAME = "kindml"
FEAST_REGISTRY = f"feast-{FEATURE_STORE_NAME}-registry.{NAMESPACE}.svc.cluster.local:80"

# Environment of runner pods (KFP components, RayJob entrypoints, predictors):
# ConfigMap RUNTIME_ENV_CONFIGMAP in the kubeflow and kindml namespaces.
RUNTIME_ENV_CONFIGMAP = "kindml-runtime-env"
RUNNER_ENV: dict[str, str] = {
    "KINDML_TARGET": "kind",
    "MLFLOW_TRACKING_URI": MLFLOW_URI,
    "KINDML_REDIS": REDIS_CONNECTION,
    "KINDML_FEAST_ONLINE_STORE": "redis",
    "KINDML_FEAST_REGISTRY": FEAST_REGISTRY,
    "KINDML_PREDICTOR_NAMESPACE": NAMESPACE,
    "KINDML_PROMETHEUS_URL": PROMETHEUS_URL,
    "RAY_AUTH_MODE": "disabled",
}

# Where the runtime image keeps its workspace inside a pod (an emptyDir).
POD_WORKSPACE = "/tmp/kindml"  # RuntimeEnv.kind() default; an emptyDir in pods

# What users open on the host (host ports from kind-config.yaml).
UI_PORTS: dict[str, int] = {
    "kfp-ui": 30080,
    "kfp-api": 30088,
    "grafana": 30300,
    "prometheus": 30090,
    "mlflow": 30500,
    "model-endpoint": 30800,
}


def ui_urls(host: str = "127.0.0.1") -> dict[str, str]:
    return {name: f"http://{host}:{port}" for name, port in UI_PORTS.items()}
