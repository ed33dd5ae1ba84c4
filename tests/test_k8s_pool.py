"""The Kubernetes work pool (deploy/k8s/gpu-pool.json) rendered by Prefect's own code, as the worker renders it.

Prefect validates a pool's template on creation (server schema + jsonschema of the variables), validates
the job variables of each flow run against that schema (required ones included), and the Kubernetes worker
turns template + variables into the Job manifest (`KubernetesWorkerJobConfiguration`). Each is called here.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path, PurePosixPath

import pytest
import yaml

pytest.importorskip("prefect_kubernetes")

from prefect.cli.deploy._models import PrefectYamlModel
from prefect.client.schemas.objects import FlowRun
from prefect.server.schemas.actions import WorkPoolCreate
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.utilities.schema_tools import is_valid_schema, validate
from prefect.utilities.schema_tools.validation import ValidationError
from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = json.loads((ROOT / "deploy/k8s/gpu-pool.json").read_text())
K8S_DEPLOYMENTS = ROOT / "deploy/k8s/prefect.yaml"
IMAGE = "registry.example.com/past:0.1.0"


def defaults(template: dict) -> dict:
    return {k: v["default"] for k, v in template["variables"]["properties"].items() if "default" in v}


def validate_run_variables(values: dict) -> None:
    """What the server runs on each flow run of a deployment on the pool (validation.py,
    `_validate_work_pool_job_variables` with ignore_required=False): the defaults overlaid by the values."""
    validate({**defaults(TEMPLATE), **values}, TEMPLATE["variables"], raise_on_error=True, preprocess=True,
             ignore_required=False, allow_none_with_default=True)


def render(values: dict) -> dict:
    """The Job manifest the Kubernetes worker submits for a flow run with these job variables."""
    # No block references in the template, so the client is never used; an address keeps Prefect from
    # starting a temporary server for it.
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        config = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(TEMPLATE, values))
    config.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name="adapt-news-001"))
    return config.job_manifest


def container(manifest: dict) -> dict:
    [only] = manifest["spec"]["template"]["spec"]["containers"]
    return only


def test_the_pool_is_created_as_prefect_validates_it():
    WorkPoolCreate(name="gpu-k8s", type="kubernetes", base_job_template=TEMPLATE)  # placeholders declared
    is_valid_schema(TEMPLATE["variables"], preprocess=False)
    validate(defaults(TEMPLATE), TEMPLATE["variables"], raise_on_error=True, preprocess=True,
             ignore_required=True, allow_none_with_default=True)  # the defaults fit their own schema


def test_the_template_is_prefects_default_plus_gpus_image_and_volume():
    """Started from the worker's default: every other variable unchanged, so worker upgrades show up here."""
    default = KubernetesWorker.get_default_base_job_template()
    ours, theirs = TEMPLATE["variables"]["properties"], default["variables"]["properties"]
    changed = {"image", "env"}
    assert set(ours) - set(theirs) == {"gpus", "claim"}
    assert {k: ours[k] for k in theirs if k not in changed} == {k: theirs[k] for k in theirs if k not in changed}
    assert {k: v for k, v in TEMPLATE["job_configuration"].items() if k != "job_manifest"} == \
        {k: v for k, v in default["job_configuration"].items() if k != "job_manifest"}


def test_rendered_job_requests_the_gpus_runs_the_image_and_mounts_the_claim():
    values = {"image": IMAGE, "claim": "team-past", "gpus": 4}
    validate_run_variables(values)
    manifest = render(values)
    c, pod = container(manifest), manifest["spec"]["template"]["spec"]
    assert c["image"] == IMAGE
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert c["args"] == ["prefect", "flow-run", "execute"]  # the image's PATH: the project venv's prefect
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert volumes["past-data"]["persistentVolumeClaim"] == {"claimName": "team-past"}
    assert mounts == {"past-data": "/srv/past", "dshm": "/dev/shm"}  # torchrun's NCCL needs more than 64 MiB
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory"}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HF_HOME"] == "/srv/past/.cache/huggingface"  # hub downloads once, on the volume
    assert env["TOKENIZERS_PARALLELISM"] == "false"
    assert pod["securityContext"]["fsGroup"] == 1000 and pod["securityContext"]["runAsNonRoot"]


def test_defaults_take_all_eight_gpus_and_a_deployment_can_add_env():
    manifest = render({"image": IMAGE, "claim": "past-data", "env": {"NCCL_DEBUG": "WARN"}})
    c = container(manifest)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 8
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["NCCL_DEBUG"] == "WARN" and env["HF_HOME"] == "/srv/past/.cache/huggingface"  # merged, not replaced


@pytest.mark.parametrize("missing", ["image", "claim"])
def test_a_run_without_image_or_claim_is_refused(missing):
    values = {k: v for k, v in {"image": IMAGE, "claim": "past-data"}.items() if k != missing}
    with pytest.raises(ValidationError, match=missing):
        validate_run_variables(values)


def test_gpus_must_be_a_count():
    with pytest.raises(ValidationError, match="gpus"):
        validate_run_variables({"image": IMAGE, "claim": "past-data", "gpus": -1})
    with pytest.raises(ValidationError, match="gpus"):
        validate_run_variables({"image": IMAGE, "claim": "past-data", "gpus": "all"})


def test_k8s_deployments_mirror_prefect_yaml_and_read_params_from_the_volume():
    main = PrefectYamlModel.model_validate(yaml.safe_load((ROOT / "prefect.yaml").read_text()))
    k8s = PrefectYamlModel.model_validate(yaml.safe_load(K8S_DEPLOYMENTS.read_text()))
    by_name = {d.name: d for d in main.deployments}
    mount = PurePosixPath(container(render({"image": IMAGE, "claim": "past-data"}))["volumeMounts"][0]["mountPath"])
    workdir = re.findall(r"^WORKDIR\s+(\S+)", (ROOT / "deploy/Containerfile").read_text(), re.M)[-1]
    assert k8s.pull == [{"prefect.deployments.steps.set_working_directory": {"directory": workdir}}]
    assert {d.name for d in k8s.deployments} == {f"{n}-k8s" for n in by_name}
    for d in k8s.deployments:
        twin = by_name[d.name.removesuffix("-k8s")]
        assert (d.entrypoint, d.triggers, d.schedules, d.concurrency_limit) == \
            (twin.entrypoint, twin.triggers, twin.schedules, twin.concurrency_limit), d.name
        assert PurePosixPath(d.parameters["params"]).parent == mount  # landing/ and the registry land there
        assert d.work_pool.name == "gpu-k8s"
        values = {**d.work_pool.job_variables, "image": IMAGE}  # `{{ $PAST_IMAGE }}` is filled at deploy time
        validate_run_variables(values)
        gpus = container(render(values))["resources"]["limits"]["nvidia.com/gpu"]
        assert gpus == (0 if d.name == "watch-k8s" else 8)
