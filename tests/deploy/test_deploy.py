"""The deployment files of examples/deploy/ pass their formats' own validators and regfs's
checks, and broken copies of them do not (so the validators are seen to catch errors)."""
import copy
import glob
import json
import os
import shutil

import pytest
import yaml

import validate as v

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "examples", "deploy")
ECS = sorted(glob.glob(os.path.join(DEPLOY, "ecs", "*.json")))
K8S = sorted(glob.glob(os.path.join(DEPLOY, "kubernetes", "*.yaml")))
COMPOSE = os.path.join(DEPLOY, "compose", "compose.yaml")


@pytest.fixture(scope="module")
def binaries():
    build = os.environ.get("REGFS_BUILD", os.path.join(ROOT, "build"))
    return v.Binaries(build)


def name(path):
    return os.path.relpath(path, DEPLOY)


def k8s_docs(path):
    with open(path) as f:
        text = f.read()
    return [d for d in yaml.safe_load_all(text) if d], text


def test_every_file_is_validated():
    covered = set(ECS) | set(K8S) | {COMPOSE}
    data = {p for p in glob.glob(os.path.join(DEPLOY, "**", "*"), recursive=True)
            if p.endswith((".json", ".yaml", ".yml"))}
    assert data <= covered, f"not validated: {sorted(map(name, data - covered))}"
    assert len(ECS) >= 3 and len(K8S) >= 2 and os.path.exists(COMPOSE)


def test_regfsd_options_read(binaries):
    # The table the checks compare against: regfsd --help as the binary prints it.
    assert binaries.options["--mount"] == (True, "REGFS_MOUNT")
    assert binaries.options["--no-mount"] == (False, "REGFS_NO_MOUNT")
    assert len(binaries.options) >= 18


# ---------------------------------------------------------------- ECS

@pytest.mark.parametrize("path", ECS, ids=[name(p) for p in ECS])
def test_ecs_task_definition(path, binaries):
    doc, text = v.load_json(path)
    assert v.ecs_schema(doc) == []
    assert v.ecs_regfs(doc, text, binaries, name(path)) == []


def _first_container(doc):
    return doc["containerDefinitions"][0]


ECS_SCHEMA_BREAKS = [
    ("misspelled field", lambda d: _first_container(d).update(linuxParameter={}),
     'Unknown parameter in containerDefinitions[0]: "linuxParameter"'),
    ("wrong type", lambda d: _first_container(d).update(essential="true"),
     "Invalid type for parameter containerDefinitions[0].essential"),
    ("missing required", lambda d: d.pop("family"), 'Missing required parameter in input: "family"'),
    ("bad enum", lambda d: d.update(networkMode="vpc"), "networkMode: 'vpc' is not one of"),
    ("bad health check type", lambda d: _first_container(d)["healthCheck"].update(interval="10s"),
     "Invalid type for parameter containerDefinitions[0].healthCheck.interval"),
]


@pytest.mark.parametrize("what,breaks,expected", ECS_SCHEMA_BREAKS, ids=[b[0] for b in ECS_SCHEMA_BREAKS])
def test_ecs_schema_rejects_broken_copy(what, breaks, expected):
    doc, _ = v.load_json(os.path.join(DEPLOY, "ecs", "ec2-in-task.json"))
    broken = copy.deepcopy(doc)
    breaks(broken)
    problems = v.ecs_schema(broken)
    assert any(expected in p for p in problems), problems


def _env(container, name, value):
    container["environment"] = [e for e in container.get("environment", []) if e["name"] != name]
    container["environment"].append({"name": name, "value": value})


def _cmd(container, old, new):
    container["command"] = [c.replace(old, new) for c in container["command"]]


ECS_REGFS_BREAKS = [
    ("ec2-in-task.json", "unknown variable", lambda d: _env(_first_container(d), "REGFS_MOUNTS", "/registry"),
     "REGFS_MOUNTS is not a regfsd variable"),
    ("ec2-in-task.json", "bad value", lambda d: _env(_first_container(d), "REGFS_FRESH", "fast"),
     "regfsd refuses this configuration"),
    ("ec2-in-task.json", "unknown option", lambda d: _cmd(_first_container(d), "regfsd &", "regfsd --mountpoint /registry &"),
     "regfsd has no option --mountpoint"),
    ("ec2-in-task.json", "other mount", lambda d: _env(_first_container(d), "REGFS_MOUNT", "/mnt/registry"),
     "the mount is /mnt/registry"),
    ("ec2-in-task.json", "no fuse device", lambda d: _first_container(d)["linuxParameters"].pop("devices"),
     "needs /dev/fuse and SYS_ADMIN"),
    ("ec2-in-task.json", "health check on nothing",
     lambda d: _first_container(d)["healthCheck"].update(command=["CMD-SHELL", "cat /registry/.metric > /dev/null"]),
     "does not read what signals readiness"),
    ("ec2-in-task.json", "literal key", lambda d: _env(_first_container(d), "KEY", "TabZIoQtld3CLJGhsHQ+yGTkOBxlQv88Lf2CuzH80Mw="),
     "literal key material"),
    ("ec2-in-task.json", "key not from a secret", lambda d: _first_container(d).pop("secrets"),
     "is not written from an ECS secret"),
    ("ec2-in-task.json", "insecure", lambda d: _env(_first_container(d), "REGFS_INSECURE", "1"),
     "regfsd runs without a key"),
    ("ec2-in-task.json", "regfs option", lambda d: _cmd(_first_container(d), "--requires ", "--require "),
     "regfs run has no option --require"),
    ("ec2-in-task.json", "bad check", lambda d: _cmd(_first_container(d), "http:/health", "https://health"),
     "is not a check"),
    ("fargate-cloudmap.json", "dependsOn START", lambda d: d["containerDefinitions"][2]["dependsOn"][0].update(condition="START"),
     "must wait for regfsd to be HEALTHY"),
    ("fargate-cloudmap.json", "fuse on Fargate", lambda d: _env(_first_container(d), "REGFS_NO_MOUNT", "0"),
     "Fargate has no /dev/fuse"),
    ("fargate-cloudmap.json", "bad join", lambda d: _env(_first_container(d), "REGFS_JOIN", "cloudmap:regfs.local"),
     "expected HOST:PORT, dns:NAME[:PORT] or file:DIR"),
    ("fargate-cloudmap.json", "command without entry point", lambda d: d["containerDefinitions"][1].pop("entryPoint")
     and d["containerDefinitions"][1].update(command=["regfs"] + d["containerDefinitions"][1]["command"]),
     "needs its entryPoint set"),
    ("fargate-efs.json", "join dir not on EFS", lambda d: _env(_first_container(d), "REGFS_JOIN", "file:/tmp/peers"),
     "is not an EFS volume mounted there"),
    ("ec2-in-task.json", "health check on another path",
     lambda d: _first_container(d)["healthCheck"].update(
         command=["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:7980/v1/status"]),
     "does not read what signals readiness"),
    ("fargate-efs.json", "socket check elsewhere",
     lambda d: _first_container(d)["healthCheck"].update(command=["CMD-SHELL", "test -S /tmp/.regfsd.sock"]),
     "does not read what signals readiness"),
    ("ec2-host-daemon.json", "host path", lambda d: d["volumes"][0]["host"].update(sourcePath="/mnt/registry"),
     "not the host's /registry"),
]


@pytest.mark.parametrize("file,what,breaks,expected", ECS_REGFS_BREAKS, ids=[f"{b[0]}-{b[1]}" for b in ECS_REGFS_BREAKS])
def test_ecs_regfs_checks_reject_broken_copy(file, what, breaks, expected, binaries):
    doc, _ = v.load_json(os.path.join(DEPLOY, "ecs", file))
    broken = copy.deepcopy(doc)
    breaks(broken)
    assert v.ecs_schema(broken) == [] or what == "bad join"
    problems = v.ecs_regfs(broken, json.dumps(broken), binaries, file)
    assert any(expected in p for p in problems), problems


# ---------------------------------------------------------------- Kubernetes

@pytest.mark.parametrize("path", K8S, ids=[name(p) for p in K8S])
def test_kubernetes_manifest(path, binaries):
    docs, text = k8s_docs(path)
    problems = [p for d in docs for p in v.k8s_schema(d)]
    assert problems == []
    assert v.k8s_regfs(docs, text, binaries, name(path)) == []


def _find(docs, kind):
    return next(d for d in docs if d["kind"] == kind)


def _container(docs, kind, cname):
    spec = _find(docs, kind)["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == cname)


def _mount(container, path):
    return next(m for m in container["volumeMounts"] if m["mountPath"] == path)


K8S_SCHEMA_BREAKS = [
    ("misspelled field", lambda ds: _mount(_container(ds, "Deployment", "regfsd"), "/registry").update(
        mountPropogation="Bidirectional"), "mountPropogation: not a field of the model"),
    ("wrong type", lambda ds: _container(ds, "Deployment", "regfsd")["securityContext"].update(privileged="yes"),
     "privileged: 'yes' comes back as True"),
    ("missing required", lambda ds: _container(ds, "Deployment", "regfsd").pop("name"),
     "Invalid value for `name`, must not be `None`"),
    ("wrong type of a port", lambda ds: _container(ds, "Deployment", "regfsd")["ports"][0].update(containerPort="7946"),
     "containerPort: '7946' comes back as 7946"),
]


@pytest.mark.parametrize("what,breaks,expected", K8S_SCHEMA_BREAKS, ids=[b[0] for b in K8S_SCHEMA_BREAKS])
def test_kubernetes_models_reject_broken_copy(what, breaks, expected):
    docs, _ = k8s_docs(os.path.join(DEPLOY, "kubernetes", "sidecar.yaml"))
    broken = copy.deepcopy(docs)
    breaks(broken)
    problems = [p for d in broken for p in v.k8s_schema(d)]
    assert any(expected in p for p in problems), problems


K8S_REGFS_BREAKS = [
    ("sidecar.yaml", "not privileged", lambda ds: _container(ds, "Deployment", "regfsd").pop("securityContext"),
     "needs privileged"),
    ("sidecar.yaml", "no propagation", lambda ds: _mount(_container(ds, "Deployment", "regfsd"), "/registry").pop("mountPropagation"),
     "must be a volume with mountPropagation Bidirectional"),
    ("sidecar.yaml", "app without propagation", lambda ds: _mount(_container(ds, "Deployment", "order"), "/registry").pop("mountPropagation"),
     "needs mountPropagation HostToContainer"),
    ("sidecar.yaml", "probe elsewhere", lambda ds: _container(ds, "Deployment", "regfsd")["readinessProbe"]["exec"].update(
        command=["cat", "/registry/metrics"]), "readinessProbe does not read what signals readiness"),
    ("sidecar.yaml", "probe on another port", lambda ds: _container(ds, "Deployment", "regfsd")["livenessProbe"]["exec"].update(
        command=["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:7981/v1/health"]),
     "livenessProbe does not read what signals readiness"),
    ("sidecar.yaml", "key as a variable", lambda ds: _container(ds, "Deployment", "regfsd")["env"].append(
        {"name": "REGFS_KEY", "valueFrom": {"secretKeyRef": {"name": "regfs-key", "key": "key"}}}),
     "REGFS_KEY is not a regfsd variable"),
    ("sidecar.yaml", "join without service", lambda ds: ds.remove(_find(ds, "Service")),
     "no headless Service regfs-peers"),
    ("daemonset.yaml", "unknown variable", lambda ds: _container(ds, "DaemonSet", "regfsd")["env"].append(
        {"name": "REGFS_HTTPS", "value": "0.0.0.0:8080"}), "REGFS_HTTPS is not a regfsd variable"),
    ("daemonset.yaml", "bad stall timeout", lambda ds: _container(ds, "DaemonSet", "regfsd")["env"].append(
        {"name": "REGFS_STALL_TIMEOUT", "value": "10ms"}), "regfsd refuses this configuration"),
]


@pytest.mark.parametrize("file,what,breaks,expected", K8S_REGFS_BREAKS, ids=[f"{b[0]}-{b[1]}" for b in K8S_REGFS_BREAKS])
def test_kubernetes_regfs_checks_reject_broken_copy(file, what, breaks, expected, binaries):
    docs, _ = k8s_docs(os.path.join(DEPLOY, "kubernetes", file))
    broken = copy.deepcopy(docs)
    breaks(broken)
    assert [p for d in broken for p in v.k8s_schema(d)] == []
    problems = v.k8s_regfs(broken, yaml.safe_dump_all(broken), binaries, file)
    assert any(expected in p for p in problems), problems


# ---------------------------------------------------------------- compose

@pytest.fixture(scope="module")
def compose():
    return v.compose_config(COMPOSE)


def test_compose_file(binaries, compose):
    problems, doc = compose
    assert problems == []
    with open(COMPOSE) as f:
        text = f.read()
    assert v.compose_regfs(doc, text, binaries, "compose.yaml") == []
    assert set(doc["services"]) == {"discovery", "config", "gateway", "user", "order"}


def _broken_compose(tmp_path, edit):
    """A copy of the compose directory whose compose.yaml has EDIT applied to its text."""
    dest = tmp_path / "compose"
    shutil.copytree(os.path.dirname(COMPOSE), dest)
    path = dest / "compose.yaml"
    path.write_text(edit(path.read_text()))
    return str(path)


COMPOSE_SCHEMA_BREAKS = [
    ("misspelled field", lambda t: t.replace("cap_add:", "cap_ad:", 1), "cap_ad"),
    ("wrong type", lambda t: t.replace("- /dev/fuse:/dev/fuse", "{fuse: /dev/fuse}", 1), "devices"),
    ("wrong type of a number", lambda t: t.replace("retries: 3", "retries: three", 1), "retries"),
]


@pytest.mark.parametrize("what,edit,expected", COMPOSE_SCHEMA_BREAKS, ids=[b[0] for b in COMPOSE_SCHEMA_BREAKS])
def test_compose_schema_rejects_broken_copy(what, edit, expected, tmp_path):
    problems, _ = v.compose_config(_broken_compose(tmp_path, edit))
    assert problems and expected in problems[0], problems


COMPOSE_REGFS_BREAKS = [
    ("unknown variable", lambda d: d["services"]["order"]["environment"].update(REGFS_JOINS="x:1"),
     "REGFS_JOINS is not a regfsd variable"),
    ("no SYS_ADMIN", lambda d: d["services"]["user"].pop("cap_add"), "needs /dev/fuse and SYS_ADMIN"),
    ("join a stranger", lambda d: d["services"]["user"]["environment"].update(REGFS_JOIN="eureka:7946"),
     "eureka is not a service of this file"),
    ("key elsewhere", lambda d: d["services"]["gateway"]["environment"].update(REGFS_KEY_FILE="/etc/regfs/key"),
     "is not one of its secrets"),
]


@pytest.mark.parametrize("what,breaks,expected", COMPOSE_REGFS_BREAKS, ids=[b[0] for b in COMPOSE_REGFS_BREAKS])
def test_compose_regfs_checks_reject_broken_copy(what, breaks, expected, binaries, compose):
    _, doc = compose
    broken = copy.deepcopy(doc)
    breaks(broken)
    problems = v.compose_regfs(broken, yaml.safe_dump(broken), binaries, "compose.yaml")
    assert any(expected in p for p in problems), problems
