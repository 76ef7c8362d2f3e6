"""Validators for the deployment files in examples/deploy/.

Each format is checked twice:
  * by a real parser of the format, offline: botocore's ECS service model
    (RegisterTaskDefinition's input shape, its ParamValidator, plus the model's enums,
    which ParamValidator leaves unchecked), the Kubernetes Python client's models
    (deserialized and serialized again: a field the model does not know is dropped on
    the way, a value of the wrong type comes back changed, so the round trip must
    give back the document), and docker-compose's `config` (the compose schema);
  * for what regfs needs: every regfsd option and REGFS_* variable exists and regfsd
    accepts the combination (`regfsd --version` parses and validates its whole command
    line and environment, then exits), `regfs` subcommands and options exist, the mount
    is /registry, health checks read something the daemon provides, the FUSE shapes
    have /dev/fuse and CAP_SYS_ADMIN (and, on Kubernetes, privileged where mount
    propagation needs it), the Fargate shape has neither, the key comes from a secret
    store and no key material is written in the file.

Every function returns a list of problems (strings); empty means valid.
"""
import json
import os
import re
import shlex
import subprocess

MOUNT = "/registry"
KEY_RE = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=")  # a regfs keygen key: base64 of 32 bytes
SERVICE_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
SHELL_OPS = {"&", "&&", ";", "|", "||", "(", ")", ";;"}


# ---------------------------------------------------------------- regfsd and regfs

class Binaries:
    """regfsd's options and variables as its --help prints them; regfs's commands."""

    def __init__(self, build):
        self.regfsd = os.path.join(build, "daemon", "app", "regfsd")
        self.regfs = os.path.join(build, "daemon", "cli", "regfs")
        text = subprocess.run([self.regfsd, "--help"], capture_output=True, text=True,
                              check=True).stdout
        self.options = {}  # --flag -> (takes a value, ENV)
        for line in text.splitlines():
            m = re.match(r"^\s+(--[a-z-]+)(\s+[A-Z:\[\]]+)?\s+.*\s(REGFS_[A-Z_]+)\s*$", line)
            if m:
                self.options[m.group(1)] = (m.group(2) is not None, m.group(3))
        self.env = {env for _, env in self.options.values()}
        self.regfs_help = subprocess.run([self.regfs, "--help"], capture_output=True,
                                         text=True).stdout + subprocess.run(
            [self.regfs, "--help"], capture_output=True, text=True).stderr

    def check_regfsd(self, args, env, where):
        """regfsd ARGS with ENV (the REGFS_* part): names exist, values accepted."""
        problems = []
        for name in env:
            if name.startswith("REGFS_") and name not in self.env:
                problems.append(f"{where}: {name} is not a regfsd variable")
        for a in args:
            if a.startswith("--") and a.split("=")[0] not in self.options:
                problems.append(f"{where}: regfsd has no option {a.split('=')[0]}")
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        clean.update({k: v for k, v in env.items() if k.startswith("REGFS_")})
        r = subprocess.run([self.regfsd, "--version", *args], env=clean, capture_output=True,
                           text=True)
        if r.returncode != 0:
            problems.append(f"{where}: regfsd refuses this configuration: {r.stderr.strip()}")
        return problems

    def check_regfs(self, args, where):
        """regfs [--mount DIR|--mirror DIR] COMMAND ...: command and options exist."""
        problems = []
        i = 0
        while i < len(args) and args[i] in ("--mount", "--mirror"):
            i += 2
        if i >= len(args):
            return [f"{where}: regfs without a command"]
        command, rest = args[i], args[i + 1:]
        if not re.search(rf"^\s+{re.escape(command)}\b", self.regfs_help, re.M):
            return [f"{where}: regfs has no command {command}"]
        own = rest[:rest.index("--")] if "--" in rest else rest
        for j, a in enumerate(own):
            if a.startswith("--") and not re.search(rf"[\[\s|]{re.escape(a)}(?=[\s\]|])", self.regfs_help):
                problems.append(f"{where}: regfs {command} has no option {a}")
            if a == "--check" and j + 1 < len(own):
                problems += check_check(own[j + 1], where)
            if a in ("--requires", "--name") and j + 1 < len(own):
                for svc in own[j + 1].split(","):
                    if not SERVICE_RE.match(svc):
                        problems.append(f"{where}: {svc!r} is not a service name")
        if command == "run" and "--" not in rest:
            problems.append(f"{where}: regfs run without -- COMMAND")
        return problems


def check_check(check, where):
    if check in ("tcp", "none") or re.match(r"^http:/\S*$", check):
        return []
    return [f"{where}: {check!r} is not a check (tcp, none, http:/PATH)"]


def words(command):
    """The words of a command given as a list; a `sh -c SCRIPT` is split as a shell would."""
    if not command:
        return []
    if isinstance(command, str):
        command = shlex.split(command)
    if len(command) >= 3 and os.path.basename(command[0]) in ("sh", "bash") and command[1] == "-c":
        lexer = shlex.shlex(command[2], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        return list(lexer)
    return list(command)


def invocations(tokens, program):
    """Argument lists of every call of PROGRAM among shell TOKENS (up to an operator)."""
    out = []
    for i, t in enumerate(tokens):
        if os.path.basename(t) == program and (i == 0 or tokens[i - 1] in SHELL_OPS | {"exec"}):
            args = []
            for a in tokens[i + 1:]:
                if a in SHELL_OPS:
                    break
                args.append(a)
            out.append(args)
    return out


def regfsd_mount(args, env):
    """(mount, mirror, no_mount) of a regfsd call, command line over environment."""
    val = dict(env)
    it = iter(range(len(args)))
    for i in it:
        a = args[i]
        name, _, inline = a.partition("=")
        if name in ("--mount", "--mirror"):
            val["REGFS_" + name[2:].upper()] = inline or args[i + 1]
        if name == "--no-mount":
            val["REGFS_NO_MOUNT"] = inline or "1"
    no_mount = val.get("REGFS_NO_MOUNT", "0") in ("1", "true", "yes")
    return val.get("REGFS_MOUNT", MOUNT), val.get("REGFS_MIRROR"), no_mount


def check_join(value, where):
    problems = []
    for source in [s for s in value.split(",") if s]:
        if source.startswith("file:"):
            if not source[5:].startswith("/"):
                problems.append(f"{where}: join {source}: file: needs an absolute directory")
        elif source.startswith("dns:"):
            rest = source[4:]
            name, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
            if not re.match(r"^[A-Za-z0-9.-]+$", name or rest) or (port and not port.isdigit()):
                problems.append(f"{where}: join {source}: expected dns:NAME[:PORT]")
        elif not re.match(r"^[A-Za-z0-9.-]+:\d+$", source):
            problems.append(f"{where}: join {source}: expected HOST:PORT, dns:NAME[:PORT] or file:DIR")
    return problems


def join_sources(args, env):
    sources = [s for s in env.get("REGFS_JOIN", "").split(",") if s]
    from_args = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--join"]
    from_args += [a.split("=", 1)[1] for a in args if a.startswith("--join=")]
    return from_args or sources


def check_literal_keys(text, where):
    found = KEY_RE.findall(text)
    return [f"{where}: literal key material in the file ({k[:6]}...)" for k in found]


def regfsd_http(args, env):
    """The --http value of a regfsd call (command line over environment), or None."""
    for i, a in enumerate(args):
        name, eq, inline = a.partition("=")
        if name == "--http":
            return inline if eq else (args[i + 1] if i + 1 < len(args) else None)
    return env.get("REGFS_HTTP") or None


def health_url(http):
    """Where a health check on the daemon's own host reaches its /v1/health."""
    host, _, port = http.rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "[::]" else host
    return f"http://{host}:{port}/v1/health"


def reads_readiness(command, mount, mirror, no_mount, http=None):
    """Whether a health-check command reads what tells that this daemon is ready: its
    /v1/health (wget or curl failing on an error status) when it serves --http, else
    the mount's .metrics or the mirror's control socket."""
    text = " ".join(command) if isinstance(command, list) else command
    if http:
        url = re.escape(health_url(http))
        return re.search(rf"(^|\s)(wget -q -O /dev/null|curl -fsS -o /dev/null) {url}$", text) is not None
    if no_mount:
        return re.search(rf"test -S {re.escape(mirror)}/\.regfsd\.sock\b", text) is not None
    return re.search(rf"(cat|test -r|head)\b.*\s{re.escape(mount)}/\.metrics\b", text) is not None


def key_from_secret_env(tokens, env_secrets, key_file):
    """A command that writes the key file from a secret variable: printf ... "$VAR" > FILE."""
    script = " ".join(tokens)
    for name in env_secrets:
        if f"${name}" in script and f"> {key_file}" in script:
            return True
    return False


# ---------------------------------------------------------------- ECS

def ecs_model():
    import botocore.session
    model = botocore.session.get_session().get_service_model("ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


def ecs_enums(value, shape, path="", out=None):
    """Enum values, which botocore's ParamValidator does not check."""
    out = [] if out is None else out
    if shape.type_name == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                ecs_enums(v, shape.members[k], f"{path}.{k}" if path else k, out)
    elif shape.type_name == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            ecs_enums(v, shape.member, f"{path}[{i}]", out)
    elif shape.type_name == "map" and isinstance(value, dict):
        for k, v in value.items():
            ecs_enums(v, shape.value, f"{path}.{k}", out)
    elif shape.type_name == "string" and shape.enum and isinstance(value, str):
        if value not in shape.enum:
            out.append(f"{path}: {value!r} is not one of {', '.join(shape.enum)}")
    return out


def ecs_schema(doc):
    from botocore.validate import ParamValidator
    shape = ecs_model()
    report = ParamValidator().validate(doc, shape)
    problems = report.generate_report().splitlines() if report.has_errors() else []
    return problems + ecs_enums(doc, shape)


def ecs_regfs(doc, text, binaries, where):
    problems = check_literal_keys(text, where)
    containers = {c.get("name"): c for c in doc.get("containerDefinitions", [])}
    fargate = "FARGATE" in doc.get("requiresCompatibilities", [])
    volumes = {v.get("name"): v for v in doc.get("volumes", [])}
    regfsd_containers = []
    for name, c in containers.items():
        at = f"{where}: container {name}"
        env = {e["name"]: e.get("value", "") for e in c.get("environment", [])}
        secrets = {s["name"]: s.get("valueFrom", "") for s in c.get("secrets", [])}
        for s, ref in secrets.items():
            if not re.match(r"^arn:aws[a-z-]*:(secretsmanager|ssm):", ref):
                problems.append(f"{at}: secret {s} is not a Secrets Manager or SSM reference")
        tokens = words((c.get("entryPoint") or []) + (c.get("command") or []))
        mounts = {m["containerPath"]: m for m in c.get("mountPoints", [])}
        if c.get("command") and not c.get("entryPoint") and (
                invocations(tokens, "regfs") or invocations(tokens, "regfsd")):
            # The regfs image's entry point is regfsd: a command alone would be its arguments.
            problems.append(f"{at}: a command that runs regfs or regfsd needs its entryPoint set")
        for call in invocations(tokens, "regfs"):
            problems += binaries.check_regfs(call, at)
        calls = invocations(tokens, "regfsd")
        for call in calls:
            regfsd_containers.append(name)
            problems += binaries.check_regfsd(call, env, at)
            mount, mirror, no_mount = regfsd_mount(call, env)
            problems += check_join(",".join(join_sources(call, env)), at)
            for src in join_sources(call, env):
                if src.startswith("file:"):
                    m = mounts.get(src[5:])
                    if not m or "efsVolumeConfiguration" not in volumes.get(m["sourceVolume"], {}):
                        problems.append(f"{at}: join {src} is not an EFS volume mounted there")
            key_file = env.get("REGFS_KEY_FILE")
            if not key_file or env.get("REGFS_INSECURE") in ("1", "true", "yes"):
                problems.append(f"{at}: regfsd runs without a key")
            elif not key_from_secret_env(tokens, secrets, key_file):
                problems.append(f"{at}: the key file {key_file} is not written from an ECS secret")
            hc = c.get("healthCheck", {}).get("command", [])
            if not reads_readiness(hc, mount, mirror, no_mount, regfsd_http(call, env)):
                problems.append(f"{at}: health check {hc} does not read what signals readiness")
            lp = c.get("linuxParameters", {})
            devices = [d.get("hostPath") for d in lp.get("devices", [])]
            caps = lp.get("capabilities", {}).get("add", [])
            if no_mount:
                if mirror != MOUNT:
                    problems.append(f"{at}: the mirror is {mirror}, not {MOUNT}")
                if mirror not in mounts:
                    problems.append(f"{at}: the mirror {mirror} is not a shared volume")
            else:
                if mount != MOUNT:
                    problems.append(f"{at}: the mount is {mount}, not {MOUNT}")
                if "/dev/fuse" not in devices or "SYS_ADMIN" not in caps:
                    problems.append(f"{at}: a FUSE mount needs /dev/fuse and SYS_ADMIN")
                if fargate:
                    problems.append(f"{at}: Fargate has no /dev/fuse: use --mirror DIR --no-mount")
        if fargate and (c.get("privileged") or "devices" in c.get("linuxParameters", {})):
            problems.append(f"{at}: Fargate allows no privileged container or device")
    for name, c in containers.items():
        at = f"{where}: container {name}"
        for dep in c.get("dependsOn", []):
            if dep["containerName"] not in containers:
                problems.append(f"{at}: depends on {dep['containerName']}, which is not in the task")
            elif dep["containerName"] in regfsd_containers and dep.get("condition") != "HEALTHY":
                problems.append(f"{at}: must wait for regfsd to be HEALTHY")
        for m in c.get("mountPoints", []):
            if m["sourceVolume"] not in volumes:
                problems.append(f"{at}: mounts volume {m['sourceVolume']}, which is not declared")
        for s in c.get("secrets", []):
            if not doc.get("executionRoleArn"):
                problems.append(f"{at}: secrets need an executionRoleArn")
        if regfsd_containers and name not in regfsd_containers:
            shared = [m for m in c.get("mountPoints", []) if m["containerPath"] == MOUNT]
            if not shared and not any(d["containerName"] in regfsd_containers
                                      for d in c.get("dependsOn", [])):
                pass  # a container that does not use the registry
            elif not shared:
                problems.append(f"{at}: does not see {MOUNT}")
            elif not any(d["containerName"] in regfsd_containers and d.get("condition") == "HEALTHY"
                         for d in c.get("dependsOn", [])):
                problems.append(f"{at}: reads {MOUNT} without waiting for regfsd to be HEALTHY")
    if not regfsd_containers:
        # The host daemon's variant: the task reads the instance's mount.
        uses = [c for c in containers.values()
                if any(m["containerPath"] == MOUNT for m in c.get("mountPoints", []))]
        if not uses:
            problems.append(f"{where}: no regfsd and no {MOUNT} from the host")
        for c in uses:
            m = next(m for m in c["mountPoints"] if m["containerPath"] == MOUNT)
            src = volumes.get(m["sourceVolume"], {}).get("host", {}).get("sourcePath")
            if src != MOUNT:
                problems.append(f"{where}: {c['name']} mounts {src}, not the host's {MOUNT}")
            if not reads_readiness(c.get("healthCheck", {}).get("command", []), MOUNT, None, False):
                problems.append(f"{where}: {c['name']}: the health check must read {MOUNT}/.metrics "
                                f"(a dead host mount must make the task unhealthy)")
    return problems


# ---------------------------------------------------------------- Kubernetes

K8S_MODELS = {("v1", "Pod"): "V1Pod", ("v1", "Service"): "V1Service",
              ("apps/v1", "DaemonSet"): "V1DaemonSet", ("apps/v1", "Deployment"): "V1Deployment"}


def _normalize(value):
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def _diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else k
            if k not in b:
                out.append(f"{p}: not a field of the model (dropped)")
            elif k not in a:
                out.append(f"{p}: added by the model")
            else:
                out += _diff(a[k], b[k], p)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    if a != b or type(a) is not type(b):
        return [f"{path}: {a!r} comes back as {b!r} (wrong type or value)"]
    return []


def k8s_schema(doc):
    from kubernetes import client
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in K8S_MODELS:
        return [f"{key[1]} ({key[0]}): not a kind these files use"]
    api = client.ApiClient()
    try:
        obj = api._ApiClient__deserialize(doc, K8S_MODELS[key])
    except (ValueError, TypeError, AttributeError) as e:
        return [f"{key[1]}: {e}"]
    back = api.sanitize_for_serialization(obj)
    return [f"{key[1]} {doc.get('metadata', {}).get('name')}: {d}"
            for d in _diff(_normalize(doc), _normalize(back))]


def _pod_spec(doc):
    if doc["kind"] == "Pod":
        return doc["spec"]
    return doc["spec"]["template"]["spec"]


def _exec(probe):
    return (probe or {}).get("exec", {}).get("command", [])


def k8s_regfs(docs, text, binaries, where):
    problems = check_literal_keys(text, where)
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for doc in docs:
        if doc["kind"] == "Service":
            continue
        spec = _pod_spec(doc)
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        pod_at = f"{where}: {doc['kind']} {doc['metadata']['name']}"
        daemon_volumes = set()
        daemons = set()
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            at = f"{pod_at} container {c['name']}"
            env = {e["name"]: e.get("value", "$(downward)") for e in c.get("env", [])}
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                if e["name"].startswith("REGFS_") and "secretKeyRef" in ref:
                    problems.append(f"{at}: {e['name']} holds a secret, but regfsd reads the key from a file")
            tokens = words((c.get("command") or []) + (c.get("args") or []))
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
            for call in invocations(tokens, "regfs"):
                problems += binaries.check_regfs(call, at)
            for call in invocations(tokens, "regfsd"):
                daemons.add(c["name"])
                probe_env = {k: ("regfs-node" if v == "$(downward)" else v) for k, v in env.items()}
                if probe_env.get("REGFS_ADVERTISE") == "regfs-node":
                    probe_env["REGFS_ADVERTISE"] = "10.0.0.1"
                problems += binaries.check_regfsd(call, probe_env, at)
                mount, mirror, no_mount = regfsd_mount(call, env)
                if mount != MOUNT:
                    problems.append(f"{at}: the mount is {mount}, not {MOUNT}")
                m = mounts.get(mount)
                if not m or m.get("mountPropagation") != "Bidirectional":
                    problems.append(f"{at}: {mount} must be a volume with mountPropagation Bidirectional")
                else:
                    daemon_volumes.add(m["name"])
                if not (c.get("securityContext") or {}).get("privileged"):
                    problems.append(f"{at}: Bidirectional propagation (and /dev/fuse) needs privileged")
                for probe in ("readinessProbe", "livenessProbe"):
                    if not reads_readiness(_exec(c.get(probe)), mount, mirror, no_mount,
                                           regfsd_http(call, env)):
                        problems.append(f"{at}: {probe} does not read what signals readiness")
                key_file = env.get("REGFS_KEY_FILE")
                if not key_file or env.get("REGFS_INSECURE") in ("1", "true", "yes"):
                    problems.append(f"{at}: regfsd runs without a key")
                else:
                    km = [mm for p, mm in mounts.items() if key_file.startswith(p.rstrip("/") + "/")]
                    if not km or "secret" not in vols.get(km[0]["name"], {}):
                        problems.append(f"{at}: the key file {key_file} is not from a Secret volume")
                for src in join_sources(call, env):
                    problems += check_join(src, at)
                    if src.startswith("dns:"):
                        name = src[4:].split(":")[0].split(".")[0]
                        svc = services.get(name)
                        if not svc or svc["spec"].get("clusterIP") != "None":
                            problems.append(f"{at}: join {src}: no headless Service {name} in the file")
                        elif not svc["spec"].get("publishNotReadyAddresses"):
                            problems.append(f"{at}: Service {name} must publish not-ready addresses "
                                            "(the first daemons join before any is ready)")
        for c in spec.get("containers", []):
            at = f"{pod_at} container {c['name']}"
            for m in c.get("volumeMounts", []):
                if m["mountPath"] != MOUNT or c["name"] in daemons:
                    continue
                if m.get("mountPropagation") != "HostToContainer":
                    problems.append(f"{at}: {MOUNT} needs mountPropagation HostToContainer "
                                    "(else a restarted daemon's new mount is not seen)")
                if doc["kind"] != "DaemonSet" and not daemon_volumes:
                    host = vols.get(m["name"], {}).get("hostPath", {}).get("path")
                    if host != MOUNT:
                        problems.append(f"{at}: reads {MOUNT} but no regfsd mounts it")
    return problems


# ---------------------------------------------------------------- compose

def compose_config(path):
    """docker-compose's own parse and schema check; returns (problems, resolved doc)."""
    import yaml
    r = subprocess.run(["docker-compose", "-f", path, "config"], capture_output=True, text=True,
                       cwd=os.path.dirname(path))
    if r.returncode != 0:
        return [r.stderr.strip() or r.stdout.strip()], None
    return [], yaml.safe_load(r.stdout)


def compose_regfs(doc, text, binaries, where):
    problems = check_literal_keys(text, where)
    services = doc.get("services", {})
    secrets = doc.get("secrets", {})
    for name, s in services.items():
        at = f"{where}: service {name}"
        env = s.get("environment", {})
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        env = {k: ("" if v is None else str(v)) for k, v in env.items()}
        tokens = words((s.get("entrypoint") or []) + (s.get("command") or []))
        for call in invocations(tokens, "regfs"):
            problems += binaries.check_regfs(call, at)
        calls = invocations(tokens, "regfsd")
        if not calls:
            problems.append(f"{at}: no regfsd in this service's container")
        for call in calls:
            problems += binaries.check_regfsd(call, env, at)
            mount, mirror, no_mount = regfsd_mount(call, env)
            if mount != MOUNT:
                problems.append(f"{at}: the mount is {mount}, not {MOUNT}")
            devices = [d.split(":")[0] for d in s.get("devices", [])]
            if "/dev/fuse" not in devices or "SYS_ADMIN" not in s.get("cap_add", []):
                problems.append(f"{at}: a FUSE mount needs /dev/fuse and SYS_ADMIN")
            hc = s.get("healthcheck", {}).get("test", [])
            if not reads_readiness(hc, mount, mirror, no_mount):
                problems.append(f"{at}: health check {hc} does not read {mount}/.metrics")
            key_file = env.get("REGFS_KEY_FILE", "")
            used = [x["source"] if isinstance(x, dict) else x for x in s.get("secrets", [])]
            targets = {f"/run/secrets/{u}" for u in used}
            if key_file not in targets:
                problems.append(f"{at}: REGFS_KEY_FILE {key_file!r} is not one of its secrets")
            for u in used:
                if "file" not in secrets.get(u, {}) and not secrets.get(u, {}).get("external"):
                    problems.append(f"{at}: secret {u} is neither a file nor external")
            for src in join_sources(call, env):
                problems += check_join(src, at)
                host = src.split(":")[0]
                if not src.startswith(("dns:", "file:")) and host not in services:
                    problems.append(f"{at}: join {src}: {host} is not a service of this file")
    return problems


def load_json(path):
    with open(path) as f:
        text = f.read()
    return json.loads(text), text
