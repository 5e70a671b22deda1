"""A Kubernetes control plane on loopback for tests and local runs: etcd, kube-apiserver and the
garbage collector of kube-controller-manager, plus kubectl and helm.

Nothing is downloaded as a binary: `fetch` builds every tool with Go from the module proxy, from
wrapper modules in this package that pin one release and every dependency by hash (go.mod and
go.sum beside this file): Kubernetes (the staging modules replaced, since k8s.io/kubernetes
cannot be `go install`ed), etcd and helm. The binaries land in ~/.cache/fillpath/kube-<release>/
once. `start_control_plane` runs them in a data directory on free loopback ports, with a bearer
token in group system:masters, and writes a kubeconfig for kubectl, helm and the operator.

Which controllers run: only the garbage collector (owner references are honoured, as on a real
cluster) and the namespace controller. There is no scheduler and no kubelet: Deployments stay
objects, nothing runs in pods — the tests check the objects the operator writes.

`python -m fillpath.infra.kube.controlplane fetch` builds; `... run DIR` serves until Ctrl-C.
"""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from fillpath.infra.cache import cache_dir
from fillpath.infra.grpc_server import wait_for_signal

KUBERNETES_VERSION = "v1.34.12"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.21.4"
# Wrapper module → (package, binary) it builds.
_TOOLS = {
    "apiserver": (
        ("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
        ("k8s.io/kubernetes/cmd/kube-controller-manager", "kube-controller-manager"),
        ("k8s.io/kubernetes/cmd/kubectl", "kubectl"),
    ),
    "etcd": (("go.etcd.io/etcd/server/v3", "etcd"),),
    "helm": (("helm.sh/helm/v3/cmd/helm", "helm"),),
}


def bin_dir() -> Path:
    return cache_dir() / f"kube-{KUBERNETES_VERSION}" / "bin"


def fetch(log: Path | None = None) -> Path:
    """Builds the missing binaries into `bin_dir()` (a few minutes the first time); its path."""
    target = bin_dir()
    missing = {
        module: tools
        for module, tools in _TOOLS.items()
        if not all((target / binary).exists() for _, binary in tools)
    }
    if not missing:
        return target
    if shutil.which("go") is None:
        raise RuntimeError("building the Kubernetes control plane needs Go ≥ 1.26 on the PATH")
    target.mkdir(parents=True, exist_ok=True)
    version = KUBERNETES_VERSION.removeprefix("v").split(".")
    ldflags = (
        f"-s -w -X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}"
        f" -X k8s.io/component-base/version.gitMajor={version[0]}"
        f" -X k8s.io/component-base/version.gitMinor={version[1]}"
        f" -X go.etcd.io/etcd/api/v3/version.Version={ETCD_VERSION.removeprefix('v')}"
        f" -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"
    )
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOSUMDB": "off"}
    # go.sum pins every module by hash, so the checksum database is not needed.
    for module, tools in missing.items():
        packages = [package for package, _ in tools]
        with tempfile.TemporaryDirectory(prefix=f"fillpath-{module}-") as scratch:
            for name in ("go.mod", "go.sum"):
                source = files("fillpath.infra.kube") / module / name
                (Path(scratch) / name).write_bytes(source.read_bytes())
            out = Path(scratch) / "out"
            out.mkdir()
            command = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out), *packages]
            with open(log or os.devnull, "ab") as sink:
                subprocess.run(command, cwd=scratch, env=env, check=True, stdout=sink, stderr=sink)
            for built in out.iterdir():
                # go names a /v3 module's binary after the element before the version: server.
                name = "etcd" if built.name in ("server", "v3") else built.name
                temporary = target / f".{name}.partial"
                shutil.copy2(built, temporary)
                temporary.replace(target / name)  # atomic: a half-copied binary is never found
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(slots=True)
class ControlPlane:
    url: str
    token: str
    kubeconfig: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """What kubectl, helm and kopf need to find this control plane."""
        return {"KUBECONFIG": str(self.kubeconfig), "PATH": f"{bin_dir()}:{os.environ['PATH']}"}

    def kubectl(
        self, *args: str, check: bool = True, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(bin_dir() / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=input_text,
            timeout=120,
        )
        if check and result.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def wait_established(self, *crds: str, timeout: float = 60.0) -> None:
        """Waits until each CRD is served. Polls, since `kubectl wait` fails outright on a CRD
        whose status has no conditions yet (the apiserver sets them a moment after the create)."""
        established = '{.status.conditions[?(@.type=="Established")].status}'
        deadline = time.monotonic() + timeout
        for name in crds:
            while (
                self.kubectl(
                    "get", f"crd/{name}", "-o", f"jsonpath={established}", check=False
                ).stdout.strip()
                != "True"
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"CRD {name} not established within {timeout}s")
                time.sleep(0.2)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir() / "helm"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=300,
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_control_plane(data_dir: Path, *, timeout: float = 120.0) -> ControlPlane:
    """Starts etcd, kube-apiserver and the garbage collector in `data_dir`; waits until ready."""
    binaries = fetch()
    data_dir.mkdir(parents=True, exist_ok=True)
    certs = data_dir / "certs"
    certs.mkdir(exist_ok=True)
    key = certs / "service-account.key"
    if not key.exists():
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("the control plane needs openssl for its service-account key")
        subprocess.run(
            [openssl, "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
    token = secrets.token_hex(16)
    tokens = data_dir / "tokens.csv"
    tokens.write_text(f'{token},admin,admin,"system:masters"\n')
    etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
    url = f"https://127.0.0.1:{api_port}"
    kubeconfig = data_dir / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fillpath\n"
        f"clusters:\n- name: fillpath\n  cluster:\n    server: {url}\n"
        "    insecure-skip-tls-verify: true\n"
        f"users:\n- name: admin\n  user:\n    token: {token}\n"
        "contexts:\n- name: fillpath\n  context:\n    cluster: fillpath\n    user: admin\n"
        "    namespace: default\n"
    )
    plane = ControlPlane(url=url, token=token, kubeconfig=kubeconfig)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    try:
        plane.processes.append(
            _spawn(
                logs / "etcd.log",
                binaries / "etcd",
                f"--data-dir={data_dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
            )
        )
        plane.processes.append(
            _spawn(
                logs / "kube-apiserver.log",
                binaries / "kube-apiserver",
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={certs}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                f"--token-auth-file={tokens}",
                f"--service-account-issuer={url}/",
                f"--service-account-key-file={key}",
                f"--service-account-signing-key-file={key}",
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
            )
        )
        _wait_ready(plane, timeout)
        plane.processes.append(
            _spawn(
                logs / "kube-controller-manager.log",
                binaries / "kube-controller-manager",
                f"--kubeconfig={kubeconfig}",
                "--controllers=garbagecollector,namespace",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={_free_port()}",
                "--use-service-account-credentials=false",
            )
        )
    except BaseException:
        plane.stop()
        raise
    return plane


def _spawn(log: Path, *command: object) -> subprocess.Popen[bytes]:
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [str(c) for c in command], stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_ready(plane: ControlPlane, timeout: float) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate, on loopback
    port = int(plane.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        for process in plane.processes:
            if process.poll() is not None:
                name = Path(str(process.args[0])).name  # type: ignore[index]
                raise RuntimeError(f"{name} exited with {process.returncode}; see its log")
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=context)
        try:
            connection.request("GET", "/readyz", headers={"Authorization": f"Bearer {plane.token}"})
            if connection.getresponse().status == 200:
                return
        except OSError as err:
            last = err
        finally:
            connection.close()
        time.sleep(0.2)
    raise TimeoutError(f"kube-apiserver not ready within {timeout}s: {last}")


def main() -> None:
    if sys.argv[1:2] == ["fetch"]:
        print(f"building the control plane into {bin_dir()} (once; a few minutes)…", flush=True)
        print(fetch(bin_dir().parent / "build.log"))
    elif sys.argv[1:2] == ["run"] and len(sys.argv) == 3:
        plane = start_control_plane(Path(sys.argv[2]))
        print(f"kube-apiserver at {plane.url}; KUBECONFIG={plane.kubeconfig}", flush=True)
        try:
            wait_for_signal()
        finally:
            plane.stop()
    else:
        raise SystemExit("usage: python -m fillpath.infra.kube.controlplane fetch | run DIR")


if __name__ == "__main__":
    main()
