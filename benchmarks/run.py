"""Benchmark this client against AWS's official clients and capo-polly: ``make bench``.

    .venv/bin/python benchmarks/run.py            # full run (a few minutes)
    .venv/bin/python benchmarks/run.py --quick    # CI smoke run (under a minute)
    .venv/bin/python benchmarks/run.py --clients ours,js

What runs where. The Polly emulator (``python -m amazon_polly_streaming.testing``)
runs in its own process on loopback with zero synthesis delay and a fixed
audio size per character (pcm 16000: 40 ms/char x 16000 Hz x 2 bytes = 1280
bytes per character, so every stream's audio size is exact and checked).
Each client runs in its own worker process under its own runtime:

=============  ================================  ==============================
client         worker                            runtime
=============  ================================  ==============================
ours           benchmarks/workers/ours.py        .venv
aws-sdk-polly  benchmarks/workers/aws_sdk_polly.py  .tools/interop-py
js             benchmarks/workers/js.mjs         node + tests/interop/node
capo           benchmarks/workers/capo.py        .tools/capo-py
=============  ================================  ==============================

A worker takes JSON jobs on stdin and answers one JSON line per job, with
per-stream timings, the worker's own CPU (``getrusage(RUSAGE_SELF)`` /
``process.cpuUsage()``) around the measured part only, and the emulator's CPU
over the same span (from ``/proc``). Start-up (interpreter + imports) is
reported apart. A client whose runtime is missing or fails to start is left
out, with the reason in the report.

Interleaving. Each round starts a fresh worker per client; then, scenario by
scenario, every client runs the same job, in an order rotated per round and
per scenario, so all clients share the machine's noise. Several rounds.

Scenarios: warm sequential short utterances (after warm-up calls on the same
client); cold one-shot (a fresh client, hence a fresh connection, per
stream); concurrency 1/8/16/64 (ours with ``pool_size`` = concurrency); one
long stream of >= 10 MB of audio sent as several text events; and, in-process
for ours only, microbenchmarks of the hot path and a profile of warm streams.

Voice-agent scenarios. *Prewarm* (ours only: no peer has an equivalent): a
fresh client's first utterance, cold (the call connects) vs after
``prewarm(1)`` vs the next call (warm), the process's idle connections closed
before each fresh client. *Barge-in*: stop a several-sentence utterance at its
first audio chunk, each client its own way (ours ``cancel()``, the JS SDK an
``AbortController``, aws-sdk-polly and capo-polly have no cancel: close the
stream / leave its context), then the next call on the same client; the
connections carrying the calls are counted from ``/proc`` in the worker.
*Incremental text*: the text arrives one word every 25 ms (like LLM tokens),
paced by absolute deadlines; per sentence, the time from handing over its last
word to its first audio byte (the emulator synthesizes a sentence as soon as
it ends, with zero delay).

Every stream has a timeout and every job a deadline: nothing hangs, errors
are counted.

Output: a markdown table on stdout and in ``benchmarks/results/latest.md``,
JSON in ``latest.json``, a chart in ``latest.png`` and the profile in
``latest-profile.txt`` (``--quick``: ``benchmarks/results/quick/``, git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
WORKERS = BENCH / "workers"
RESULTS = BENCH / "results"
LOGS = RESULTS / "tmp"  # git-ignored
NODE_DIR = ROOT / "tests" / "interop" / "node"

REGION = "us-east-1"
VOICE = "Joanna"
OUTPUT_FORMAT = "pcm"
SAMPLE_RATE = "16000"
MS_PER_CHARACTER = 40.0
BYTES_PER_CHARACTER = int(MS_PER_CHARACTER / 1000 * 16000 * 2)  # 1280
SHORT_TEXT = "Hello world, how are you today."
LEVELS_FULL = (1, 8, 16, 64)
BARGE_IN_TEXT = (
    "Sure, let me look that up for you right now. Your order number is four "
    "five seven one. It shipped yesterday from our warehouse in Ohio. The "
    "carrier expects to deliver it on Friday afternoon. You will get a text "
    "message when it is out for delivery. Is there anything else I can help "
    "you with today?"
)
"""The utterance barged in on: six sentences, ~370 KB of pcm."""
INCREMENTAL_SENTENCES = (
    "Thanks for calling, how can I help you today?",
    "Your order shipped this morning and arrives on Friday.",
    "Would you like me to send the tracking number?",
    "I can also update the delivery address for you.",
)
WORD_INTERVAL_S = 0.025
"""One word per 25 ms: about what an LLM streams tokens at."""

type Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClientSpec:
    name: str
    title: str
    argv: tuple[str, ...]
    needs: tuple[Path, ...]
    setup_hint: str
    baseline: bool = False
    """Not a client: a measuring stick that runs the warm scenario only."""


CLIENTS: dict[str, ClientSpec] = {
    "ours": ClientSpec(
        "ours",
        "ours (amazon-polly-streaming)",
        (str(ROOT / ".venv/bin/python"), str(WORKERS / "ours.py")),
        (ROOT / ".venv/bin/python",),
        "make setup",
    ),
    "aws-sdk-polly": ClientSpec(
        "aws-sdk-polly",
        "aws-sdk-polly (AWS, Python, awscrt)",
        (str(ROOT / ".tools/interop-py/bin/python"), str(WORKERS / "aws_sdk_polly.py")),
        (ROOT / ".tools/interop-py/bin/python",),
        "make setup-interop",
    ),
    "js": ClientSpec(
        "js",
        "@aws-sdk/client-polly (AWS, Node, HTTP/2)",
        ("node", str(WORKERS / "js.mjs")),
        (NODE_DIR / "node_modules" / "@aws-sdk" / "client-polly",),
        "make setup-interop (and node on PATH)",
    ),
    "capo": ClientSpec(
        "capo",
        "capo-polly (community, Python, h2)",
        (str(ROOT / ".tools/capo-py/bin/python"), str(WORKERS / "capo.py")),
        (ROOT / ".tools/capo-py/bin/python",),
        ".tools/bin/uv venv .tools/capo-py && .tools/bin/uv pip sync "
        "--python .tools/capo-py/bin/python benchmarks/requirements-capo.txt",
    ),
    "floor": ClientSpec(
        "floor",
        "floor: pre-signed raw h2 request on a warm connection (baseline)",
        (str(ROOT / ".venv/bin/python"), str(WORKERS / "floor_h2.py")),
        (ROOT / ".venv/bin/python",),
        "make setup",
        baseline=True,
    ),
}
CHOICES = tuple(name for name, spec in CLIENTS.items() if not spec.baseline)
PEERS = ("aws-sdk-polly", "js")  # the ratio columns


# Parameters ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Params:
    mode: str
    rounds: int
    warm_streams: int
    warm_warmup: int
    cold_streams: int
    cold_warmup: int
    levels: tuple[int, ...]
    level_streams: dict[int, int]
    long_chars: int
    long_events: int
    long_streams: int
    stream_timeout_s: float
    long_timeout_s: float
    micro_scale: float
    profile_streams: int
    prewarm_samples: int
    prewarm_warmup: int
    bargein_streams: int
    incremental_streams: int


def params_for(*, quick: bool, rounds: int | None, profile: bool | None) -> Params:
    if quick:
        return Params(
            mode="quick",
            rounds=rounds or 1,
            warm_streams=5,
            warm_warmup=1,
            cold_streams=3,
            cold_warmup=1,
            levels=LEVELS_FULL,
            level_streams={n: max(8, n) for n in LEVELS_FULL},
            long_chars=900,  # ~1.1 MB: proves the path, not the rate
            long_events=3,
            long_streams=1,
            stream_timeout_s=10.0,
            long_timeout_s=30.0,
            micro_scale=0.1,
            profile_streams=40 if profile else 0,
            prewarm_samples=2,
            prewarm_warmup=1,
            bargein_streams=3,
            incremental_streams=1,
        )
    return Params(
        mode="full",
        rounds=rounds or 5,
        warm_streams=40,
        warm_warmup=2,
        cold_streams=10,
        cold_warmup=1,
        levels=LEVELS_FULL,
        level_streams={1: 64, 8: 128, 16: 128, 64: 256},
        long_chars=8200,  # x 1280 B = 10.5 MB of audio
        long_events=8,
        long_streams=1,
        stream_timeout_s=15.0,
        long_timeout_s=120.0,
        micro_scale=1.0,
        profile_streams=0 if profile is False else 300,
        prewarm_samples=10,
        prewarm_warmup=1,
        bargein_streams=20,
        incremental_streams=4,
    )


def long_text_events(chars: int, events: int) -> list[str]:
    """About ``chars`` characters of whole sentences, in ``events`` pieces."""
    sentences: list[str] = []
    total = 0
    i = 0
    while total < chars:
        i += 1
        sentence = f"Sentence {i} of the long benchmark text goes on at an even pace. "
        sentences.append(sentence)
        total += len(sentence)
    per = math.ceil(len(sentences) / events)
    return ["".join(sentences[k : k + per]) for k in range(0, len(sentences), per)]


def incremental_words() -> tuple[list[str], list[int]]:
    """The incremental scenario's words (each with its trailing space, as a
    tokenizer would hand them over) and the index of each sentence's last word."""
    words: list[str] = []
    ends: list[int] = []
    for sentence in INCREMENTAL_SENTENCES:
        words += [f"{word} " for word in sentence.split()]
        ends.append(len(words) - 1)
    return words, ends


def expected_bytes(texts: list[str]) -> int:
    """The exact pcm audio size the emulator sends for these text events."""
    from amazon_polly_streaming.testing.service import expected_audio  # noqa: PLC0415

    audio = expected_audio(
        texts,
        voice_id=VOICE,
        output_format=OUTPUT_FORMAT,
        sample_rate=int(SAMPLE_RATE),
        ms_per_character=MS_PER_CHARACTER,
    )
    return len(audio)


# Processes -------------------------------------------------------------------


class HarnessError(RuntimeError):
    pass


def _stop(process: subprocess.Popen[str], *, grace: float) -> None:
    """Stop a process (and its group) we started: TERM, then KILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


class LineReader:
    """Lines from a pipe, with a timeout (a thread does the blocking reads)."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        with contextlib.suppress(ValueError, OSError):
            for line in stream:
                self._lines.put(line)
        self._lines.put(None)

    def get(self, timeout: float) -> str | None:
        """The next line; ``None`` at end of stream; ``TimeoutError`` if none came."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None


class Emulator:
    """The emulator in its own process, stopped however the run ends."""

    def __init__(self, log: Path) -> None:
        self.argv = [
            str(ROOT / ".venv/bin/python"),
            "-m",
            "amazon_polly_streaming.testing",
            "--json",
            "--ms-per-character",
            str(MS_PER_CHARACTER),
            "--synthesis-delay",
            "0",
            "--max-concurrent-streams",
            "1000",
        ]
        self._log = log
        self._process: subprocess.Popen[str] | None = None
        self.info: Json = {}

    def start(self) -> Json:
        log = self._log.open("w")
        try:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=ROOT,
                start_new_session=True,
            )
        finally:
            log.close()
        assert self._process.stdout is not None
        reader = LineReader(self._process.stdout)
        try:
            line = reader.get(60)
        except TimeoutError:
            raise HarnessError("the emulator printed nothing within 60 s") from None
        if not line:
            raise HarnessError(f"the emulator exited; see {self._log}")
        self.info = json.loads(line)
        return self.info

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process, grace=10)


class Worker:
    """One client's worker process: JSON jobs in, JSON results out."""

    def __init__(self, spec: ClientSpec, env: dict[str, str], log: Path) -> None:
        self.spec = spec
        self._env = env
        self._log = log
        self._process: subprocess.Popen[str] | None = None
        self._reader: LineReader | None = None
        self.ready: Json = {}
        self.startup_wall_s = 0.0

    def start(self, timeout: float = 60.0) -> Json:
        log = self._log.open("a")
        started = time.perf_counter()
        try:
            self._process = subprocess.Popen(
                self.spec.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=WORKERS,
                env=self._env,
                start_new_session=True,
                bufsize=1,
            )
        except OSError as exc:
            raise HarnessError(f"cannot start {self.spec.argv[0]}: {exc}") from None
        finally:
            log.close()
        assert self._process.stdout is not None
        self._reader = LineReader(self._process.stdout)
        try:
            line = self._reader.get(timeout)
        except TimeoutError:
            self.stop()
            raise HarnessError(f"no ready line within {timeout:g} s") from None
        self.startup_wall_s = time.perf_counter() - started
        if not line:
            self.stop()
            raise HarnessError(f"exited at start-up: {_tail(self._log)}")
        self.ready = json.loads(line)
        return self.ready

    def run(self, job: Json, timeout: float) -> Json:
        process, reader = self._process, self._reader
        if process is None or reader is None or process.poll() is not None:
            raise HarnessError("worker is not running")
        assert process.stdin is not None
        try:
            process.stdin.write(json.dumps(job) + "\n")
            process.stdin.flush()
        except OSError as exc:
            raise HarnessError(f"worker stdin: {exc}") from None
        try:
            line = reader.get(timeout)
        except TimeoutError:
            self.stop()
            raise HarnessError(f"job {job['id']} took over {timeout:g} s") from None
        if not line:
            self.stop()
            raise HarnessError(f"worker died during {job['id']}: {_tail(self._log)}")
        result: Json = json.loads(line)
        return result

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            _stop(process, grace=5)
        self._process = None


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


# Running the plan ------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """Everything measured, as it came back."""

    results: dict[str, dict[str, list[Json]]] = field(default_factory=dict)
    """scenario key -> client -> job results (one per round)."""
    startup: dict[str, list[Json]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    micro: Json | None = None
    profile: Json | None = None
    job_failures: list[str] = field(default_factory=list)
    rounds_done: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    job: Json
    timeout_s: float
    clients: tuple[str, ...] | None = None
    """The clients that run it (``None``: every client); see ``NOT_RUN``."""


VOICE_CLIENTS = ("ours", "aws-sdk-polly", "js", "capo")
NOT_RUN: dict[str, str] = {
    "prewarm": "prewarm: ours only; no peer has an API to open and handshake a "
    "connection ahead of the first call (their rows show -)",
}


def scenarios(params: Params, base: Json) -> list[Scenario]:
    short = [SHORT_TEXT]
    short_bytes = len(SHORT_TEXT.strip()) * BYTES_PER_CHARACTER
    st = params.stream_timeout_s
    out = [
        Scenario(
            "warm",
            {
                **base,
                "kind": "warm",
                "texts": short,
                "expected_bytes": short_bytes,
                "warmup": params.warm_warmup,
                "streams": params.warm_streams,
            },
            st * (params.warm_warmup + params.warm_streams) + 30,
        ),
        Scenario(
            "cold",
            {
                **base,
                "kind": "cold",
                "cold": True,
                "texts": short,
                "expected_bytes": short_bytes,
                "warmup": params.cold_warmup,
                "streams": params.cold_streams,
            },
            st * (params.cold_warmup + params.cold_streams) + 30,
        ),
    ]
    for level in params.levels:
        n = params.level_streams[level]
        out.append(
            Scenario(
                f"c{level}",
                {
                    **base,
                    "kind": "concurrency",
                    "concurrency": level,
                    "texts": short,
                    "expected_bytes": short_bytes,
                    "streams": n,
                },
                st * (1 + math.ceil(n / level)) + 30,
            )
        )
    long_texts = long_text_events(params.long_chars, params.long_events)
    out.append(
        Scenario(
            "long",
            {
                **base,
                "kind": "long",
                "texts": long_texts,
                "expected_bytes": expected_bytes(long_texts),
                "warmup_texts": short,
                "warmup_bytes": short_bytes,
                "streams": params.long_streams,
                "stream_timeout_s": params.long_timeout_s,
            },
            st + params.long_timeout_s * params.long_streams + 30,
        )
    )
    out += voice_scenarios(params, base, short_bytes)
    # Keep every job well inside the whole run's budget.
    return [Scenario(s.key, s.job, min(s.timeout_s, 240.0), s.clients) for s in out]


def voice_scenarios(params: Params, base: Json, short_bytes: int) -> list[Scenario]:
    """Prewarm (ours only), barge-in and incremental text."""
    st = params.stream_timeout_s
    short = [SHORT_TEXT]
    words, ends = incremental_words()
    sentence_bytes = [expected_bytes([s]) for s in INCREMENTAL_SENTENCES]
    if sum(sentence_bytes) != expected_bytes(words):
        raise HarnessError("incremental text: the sentences' audio does not add up")
    return [
        Scenario(
            "prewarm",
            {
                **base,
                "kind": "prewarm",
                "texts": short,
                "expected_bytes": short_bytes,
                "warmup": params.prewarm_warmup,
                "streams": params.prewarm_samples,
            },
            st * 4 * (params.prewarm_warmup + params.prewarm_samples) + 30,
            ("ours",),
        ),
        Scenario(
            "bargein",
            {
                **base,
                "kind": "bargein",
                "texts": short,
                "expected_bytes": short_bytes,
                "long_texts": [BARGE_IN_TEXT],
                "long_bytes": expected_bytes([BARGE_IN_TEXT]),
                "streams": params.bargein_streams,
            },
            st * 2 * (params.bargein_streams + 2) + 30,
            VOICE_CLIENTS,
        ),
        Scenario(
            "incremental",
            {
                **base,
                "kind": "incremental",
                "words": words,
                "sentence_end_words": ends,
                "sentence_bytes": sentence_bytes,
                "word_interval_s": WORD_INTERVAL_S,
                "streams": params.incremental_streams,
            },
            st * (params.incremental_streams + 1) + 30,
            VOICE_CLIENTS,
        ),
    ]


def rotated[T](items: Sequence[T], by: int) -> list[T]:
    if not items:
        return []
    k = by % len(items)
    return [*items[k:], *items[:k]]


def probe(spec: ClientSpec) -> str | None:
    """Why a client cannot run here, or ``None``."""
    for path in spec.needs:
        if not path.exists():
            return f"{path.relative_to(ROOT)} is missing (install: {spec.setup_hint})"
    if spec.argv[0] == "node" and shutil.which("node") is None:
        return "node is not on PATH"
    return None


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_plan(
    params: Params, clients: list[str], emulator: Emulator, *, budget_s: float
) -> Run:
    """Every round, then ours' extras, within ``budget_s`` seconds: a round
    that would not fit (judged by the longest so far) is skipped, and said so."""
    run = Run()
    began = time.perf_counter()
    longest_round = 0.0
    info = emulator.info
    base: Json = {
        "endpoint_url": info["endpoint_url"],
        "ca_path": info["ca_path"],
        "region": REGION,
        "access_key_id": info["env"]["AWS_ACCESS_KEY_ID"],
        "secret_access_key": info["env"]["AWS_SECRET_ACCESS_KEY"],
        "voice_id": VOICE,
        "output_format": OUTPUT_FORMAT,
        "sample_rate": SAMPLE_RATE,
        "stream_timeout_s": params.stream_timeout_s,
        "emulator_pid": emulator.pid,
        "clk_tck": os.sysconf("SC_CLK_TCK"),
    }
    env = _worker_env(info["ca_path"])
    plan = scenarios(params, base)
    for name in list(clients):
        reason = probe(CLIENTS[name])
        if reason is not None:
            run.unavailable[name] = reason
            say(f"[bench] {name}: left out: {reason}")
    if "ours" in clients:
        clients = [*clients, "floor"]  # the emulator's own response time
    live = [c for c in clients if c not in run.unavailable]

    for round_no in range(params.rounds):
        spent = time.perf_counter() - began
        if round_no and spent + longest_round + 40 > budget_s:
            run.skipped.append(
                f"rounds {round_no + 1}-{params.rounds} skipped: the time budget "
                f"({budget_s:.0f} s) would be exceeded"
            )
            say(f"[bench] {run.skipped[-1]}")
            break
        round_began = time.perf_counter()
        workers: dict[str, Worker] = {}
        try:
            for name in rotated(live, round_no):
                if name in run.unavailable:
                    continue
                worker = Worker(CLIENTS[name], env, LOGS / f"worker-{name}.log")
                try:
                    ready = worker.start()
                except HarnessError as exc:
                    run.unavailable[name] = f"worker failed to start: {exc}"
                    say(f"[bench] {name}: left out: {exc}")
                    continue
                workers[name] = worker
                run.versions[name] = dict(ready.get("versions", {}))
                run.startup.setdefault(name, []).append(
                    {
                        "wall_s": worker.startup_wall_s,
                        "cpu_s": float(ready.get("startup_cpu_s", 0.0)),
                    }
                )
            for index, scenario in enumerate(plan):
                for name in rotated(
                    [c for c in live if c in workers], round_no + index
                ):
                    if not _runs(scenario, name):
                        continue
                    _run_job(
                        run,
                        workers=workers,
                        name=name,
                        scenario=scenario,
                        round_no=round_no,
                        env=env,
                    )
                if not emulator.alive():
                    raise HarnessError("the emulator died; see its log")
            run.rounds_done += 1
            longest_round = max(longest_round, time.perf_counter() - round_began)
            say(
                f"[bench] round {round_no + 1}/{params.rounds} done "
                f"({time.perf_counter() - round_began:.0f} s)"
            )
        finally:
            for worker in workers.values():
                worker.stop()

    if "ours" in live and "ours" not in run.unavailable:
        _run_ours_extras(run, params, base, env)
    return run


def _runs(scenario: Scenario, name: str) -> bool:
    """Whether client ``name`` runs ``scenario`` (the floor: warm only)."""
    if CLIENTS[name].baseline:
        return scenario.key == "warm"
    return scenario.clients is None or name in scenario.clients


def _run_job(
    run: Run,
    *,
    workers: dict[str, Worker],
    name: str,
    scenario: Scenario,
    round_no: int,
    env: dict[str, str],
) -> None:
    job = {**scenario.job, "id": f"{scenario.key}-{name}-r{round_no}"}
    worker = workers[name]
    started = time.perf_counter()
    try:
        result = worker.run(job, scenario.timeout_s)
    except HarnessError as exc:
        result = {"id": job["id"], "kind": job["kind"], "ok": False, "error": str(exc)}
        # A fresh worker for this client's next jobs (not counted as start-up).
        replacement = Worker(worker.spec, env, LOGS / f"worker-{name}.log")
        with contextlib.suppress(HarnessError):
            replacement.start()
            workers[name] = replacement
    if not result.get("ok"):
        run.job_failures.append(f"{job['id']}: {result.get('error')}")
        say(f"[bench] {job['id']} FAILED: {result.get('error')}")
    else:
        errors = sum(1 for s in result["streams"] if s["error"])
        say(
            f"[bench] {job['id']}: {len(result['streams'])} streams, "
            f"{errors} errors, {time.perf_counter() - started:.1f} s"
        )
    result["round"] = round_no
    run.results.setdefault(scenario.key, {}).setdefault(name, []).append(result)


def _run_ours_extras(run: Run, params: Params, base: Json, env: dict[str, str]) -> None:
    worker = Worker(CLIENTS["ours"], env, LOGS / "worker-ours.log")
    try:
        worker.start()
        micro_job = {
            **base,
            "id": "micro",
            "kind": "micro",
            "texts": [SHORT_TEXT],
            "scale": params.micro_scale,
            "repeats": 5,
        }
        run.micro = worker.run(micro_job, 180)
        say("[bench] microbenchmarks done")
        if params.profile_streams:
            profile_job = {
                **base,
                "id": "profile",
                "kind": "profile",
                "texts": [SHORT_TEXT],
                "expected_bytes": len(SHORT_TEXT) * BYTES_PER_CHARACTER,
                "warmup": 5,
                "streams": params.profile_streams,
                "top": 30,
            }
            run.profile = worker.run(profile_job, 240)
            say("[bench] profile done")
    except HarnessError as exc:
        run.job_failures.append(f"ours extras: {exc}")
        say(f"[bench] ours extras FAILED: {exc}")
    finally:
        worker.stop()


def _worker_env(ca_path: str) -> dict[str, str]:
    """The workers' environment: no AWS settings leak in; Node trusts the CA."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "NODE_", "PYTHON")) and k != "VIRTUAL_ENV"
    }
    env["NODE_EXTRA_CA_CERTS"] = ca_path
    env["POLLY_BENCH_NODE_DIR"] = str(NODE_DIR)
    env["NODE_NO_WARNINGS"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# Summaries --------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100) of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(jobs: list[Json]) -> Json:
    """One client's numbers for one scenario, over every round."""
    good = [j for j in jobs if j.get("ok")]
    streams = [s for j in good for s in j["streams"]]
    ok = [s for s in streams if not s["error"]]
    n = len(streams)
    ttfa = [s["ttfa_ms"] for s in ok if s["ttfa_ms"] is not None]
    total = [s["total_ms"] for s in ok]
    cpu_first = [
        s["cpu_to_first_audio_ms"] for s in ok if s["cpu_to_first_audio_ms"] is not None
    ]
    cpu = sum(j["cpu_s"] for j in good)
    wall = sum(j["wall_s"] for j in good)
    main = [j["main_cpu_s"] for j in good if j.get("main_cpu_s") is not None]
    server = [j["server_cpu_s"] for j in good if j.get("server_cpu_s") is not None]
    audio = sum(s["audio_bytes"] for s in ok)
    stream_seconds = sum(total) / 1000
    errors = Counter(s["error"] for s in streams if s["error"])
    failed_jobs = [j.get("error") for j in jobs if not j.get("ok")]
    per_round_cpu = [
        j["cpu_s"] / len(j["streams"]) * 1000 for j in good if j["streams"]
    ]
    return voice_summary(ok, good) | {
        "streams": n,
        "ok_streams": len(ok),
        "errors": n - len(ok),
        "failed_jobs": len(failed_jobs),
        "error_samples": dict(errors.most_common(3)),
        "failed_job_errors": failed_jobs[:3],
        "ttfa_p50_ms": percentile(ttfa, 50),
        "ttfa_p95_ms": percentile(ttfa, 95),
        "total_p50_ms": percentile(total, 50),
        "total_p95_ms": percentile(total, 95),
        "cpu_to_first_audio_p50_ms": percentile(cpu_first, 50),
        "cpu_ms_per_stream": cpu / n * 1000 if n else None,
        "cpu_ms_per_stream_by_round": per_round_cpu,
        "main_thread_cpu_ms_per_stream": (
            sum(main) / n * 1000 if n and len(main) == len(good) else None
        ),
        "emulator_cpu_ms_per_stream": (
            sum(server) / n * 1000 if n and len(server) == len(good) else None
        ),
        "streams_per_s": len(ok) / wall if wall else None,
        "wall_s": wall,
        "cpu_s": cpu,
        "audio_bytes": audio,
        "audio_bytes_per_stream": audio / len(ok) if ok else None,
        "mb_per_s": audio / stream_seconds / 1e6 if stream_seconds else None,
        "cpu_ms_per_mb": cpu * 1000 / (audio / 1e6) if audio else None,
    }


VOICE_MS_FIELDS = (
    "after_prewarm_ttfa_ms",
    "cold_ttfa_ms",
    "warm_ttfa_ms",
    "prewarm_ms",
    "cancel_to_closed_ms",
    "cancel_to_lease_free_ms",
    "next_ttfa_ms",
)


def voice_summary(ok: list[Json], good: list[Json]) -> Json:
    """The voice-agent scenarios' own figures (absent from the others)."""
    out: Json = {}
    for name in VOICE_MS_FIELDS:
        values = [float(s[name]) for s in ok if s.get(name) is not None]
        if values:
            stem = name.removesuffix("_ms")
            out[f"{stem}_p50_ms"] = percentile(values, 50)
            out[f"{stem}_p95_ms"] = percentile(values, 95)
    after = [
        s["audio_after_cancel_bytes"] for s in ok if "audio_after_cancel_bytes" in s
    ]
    if after:
        out["audio_after_cancel_bytes_mean"] = sum(after) / len(after)
    latencies = [float(x) for s in ok for x in s.get("sentence_latency_ms", [])]
    if latencies:
        p50 = percentile(latencies, 50) or 0.0  # never None: not empty
        p95 = percentile(latencies, 95) or 0.0
        out |= {
            "sentences": len(latencies),
            "sentence_latency_p50_ms": p50,
            "sentence_latency_p95_ms": p95,
            "sentence_latency_spread_ms": p95 - p50,
            "sentence_latency_max_ms": max(latencies),
            "schedule_slip_max_ms": max(s["schedule_slip_max_ms"] for s in ok),
        }
    barge = [j for j in good if "new_connections" in j]
    calls = sum(len(j["streams"]) for j in barge)
    if barge and calls:
        new = sum(int(j["new_connections"]) for j in barge)
        out["barge_ins"] = calls
        out["new_connections"] = new
        out["new_connections_per_100"] = new / calls * 100
        opened = [j.get("connections_opened_by_client") for j in barge]
        if all(o is not None for o in opened):
            out["connections_opened_by_client"] = sum(int(o) for o in opened if o)
    return out


def summaries(run: Run) -> dict[str, dict[str, Json]]:
    return {
        key: {name: summarize(jobs) for name, jobs in by_client.items()}
        for key, by_client in run.results.items()
    }


def startup_summary(run: Run) -> dict[str, Json]:
    return {
        name: {
            "wall_p50_ms": (percentile([s["wall_s"] * 1000 for s in rows], 50)),
            "cpu_p50_ms": (percentile([s["cpu_s"] * 1000 for s in rows], 50)),
            "samples": len(rows),
        }
        for name, rows in run.startup.items()
    }


# Report -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    section: str
    label: str
    get: Callable[[str], float | None]
    lower_is_better: bool = True
    digits: int = 2


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(ours: float | None, other: float | None) -> str:
    if ours is None or other is None or other == 0:
        return "-"
    return f"{ours / other:.2f}x"


def build_rows(
    sums: dict[str, dict[str, Json]],
    startup: dict[str, Json],
    levels: Sequence[int],
    floor: float | None,
) -> list[Row]:
    def metric(key: str, field_: str) -> Callable[[str], float | None]:
        def get(client: str) -> float | None:
            value = sums.get(key, {}).get(client, {}).get(field_)
            return None if value is None else float(value)

        return get

    def boot(field_: str) -> Callable[[str], float | None]:
        def get(client: str) -> float | None:
            value = startup.get(client, {}).get(field_)
            return None if value is None else float(value)

        return get

    def over_floor(client: str) -> float | None:
        value = metric("warm", "ttfa_p50_ms")(client)
        return None if value is None or floor is None else value - floor

    rows = [
        Row("warm", "TTFA p50 (ms) ↓", metric("warm", "ttfa_p50_ms")),
        Row("warm", "TTFA p50 over the floor (ms) ↓", over_floor),
        Row("warm", "TTFA p95 (ms) ↓", metric("warm", "ttfa_p95_ms")),
        Row("warm", "total p50 (ms) ↓", metric("warm", "total_p50_ms")),
        Row("warm", "total p95 (ms) ↓", metric("warm", "total_p95_ms")),
        Row("warm", "client CPU / stream (ms) ↓", metric("warm", "cpu_ms_per_stream")),
        Row(
            "warm",
            "… of it on the calling thread (ms)",
            metric("warm", "main_thread_cpu_ms_per_stream"),
        ),
        Row(
            "warm",
            "client CPU until first audio p50 (ms) ↓",
            metric("warm", "cpu_to_first_audio_p50_ms"),
        ),
        Row(
            "warm",
            "emulator CPU / stream (ms)",
            metric("warm", "emulator_cpu_ms_per_stream"),
        ),
        Row("warm", "errors", metric("warm", "errors"), digits=0),
        Row("cold", "TTFA p50 (ms) ↓", metric("cold", "ttfa_p50_ms")),
        Row("cold", "TTFA p95 (ms) ↓", metric("cold", "ttfa_p95_ms")),
        Row("cold", "total p50 (ms) ↓", metric("cold", "total_p50_ms")),
        Row("cold", "client CPU / stream (ms) ↓", metric("cold", "cpu_ms_per_stream")),
        Row(
            "cold",
            "emulator CPU / stream (ms)",
            metric("cold", "emulator_cpu_ms_per_stream"),
        ),
        Row("cold", "errors", metric("cold", "errors"), digits=0),
    ]
    for level in levels:
        key = f"c{level}"
        section = f"concurrency {level}"
        rows += [
            Row(section, "streams/s ↑", metric(key, "streams_per_s"), False, 1),
            Row(
                section, "client CPU / stream (ms) ↓", metric(key, "cpu_ms_per_stream")
            ),
            Row(section, "TTFA p50 (ms) ↓", metric(key, "ttfa_p50_ms")),
            Row(section, "TTFA p95 (ms) ↓", metric(key, "ttfa_p95_ms")),
            Row(
                section,
                "emulator CPU / stream (ms)",
                metric(key, "emulator_cpu_ms_per_stream"),
            ),
            Row(section, "errors", metric(key, "errors"), digits=0),
        ]
    rows += [
        Row("long (≥10 MB)", "client MB/s ↑", metric("long", "mb_per_s"), False, 1),
        Row("long (≥10 MB)", "client CPU (ms) / MB ↓", metric("long", "cpu_ms_per_mb")),
        Row(
            "long (≥10 MB)",
            "total p50 (ms) ↓",
            metric("long", "total_p50_ms"),
            digits=0,
        ),
        Row(
            "long (≥10 MB)",
            "emulator CPU / stream (ms)",
            metric("long", "emulator_cpu_ms_per_stream"),
            digits=0,
        ),
        Row("long (≥10 MB)", "errors", metric("long", "errors"), digits=0),
        *voice_rows(metric),
        Row(
            "start-up", "process ready, wall p50 (ms) ↓", boot("wall_p50_ms"), digits=0
        ),
        Row("start-up", "process ready, CPU p50 (ms) ↓", boot("cpu_p50_ms"), digits=0),
    ]
    return rows


def voice_rows(
    metric: Callable[[str, str], Callable[[str], float | None]],
) -> list[Row]:
    """The voice-agent scenarios' rows (``metric(scenario, field)``)."""
    prewarm = "prewarm: first utterance"
    barge = "barge-in"
    words = f"incremental text (a word / {WORD_INTERVAL_S * 1000:g} ms)"
    return [
        Row(
            prewarm,
            "TTFA p50, cold: the call connects (ms) ↓",
            metric("prewarm", "cold_ttfa_p50_ms"),
        ),
        Row(
            prewarm,
            "TTFA p50 after prewarm(1) (ms) ↓",
            metric("prewarm", "after_prewarm_ttfa_p50_ms"),
        ),
        Row(
            prewarm,
            "TTFA p50, warm: the next call (ms) ↓",
            metric("prewarm", "warm_ttfa_p50_ms"),
        ),
        Row(prewarm, "TTFA p95, cold (ms) ↓", metric("prewarm", "cold_ttfa_p95_ms")),
        Row(
            prewarm,
            "TTFA p95 after prewarm(1) (ms) ↓",
            metric("prewarm", "after_prewarm_ttfa_p95_ms"),
        ),
        Row(prewarm, "TTFA p95, warm (ms) ↓", metric("prewarm", "warm_ttfa_p95_ms")),
        Row(
            prewarm, "prewarm(1) itself p50 (ms) ↓", metric("prewarm", "prewarm_p50_ms")
        ),
        Row(prewarm, "errors", metric("prewarm", "errors"), digits=0),
        Row(
            barge,
            "cancel → call closed p50 (ms) ↓",
            metric("bargein", "cancel_to_closed_p50_ms"),
        ),
        Row(
            barge,
            "cancel → call closed p95 (ms) ↓",
            metric("bargein", "cancel_to_closed_p95_ms"),
        ),
        Row(
            barge,
            "cancel → lease free p50 (ms) ↓",
            metric("bargein", "cancel_to_lease_free_p50_ms"),
        ),
        Row(
            barge,
            "cancel → lease free p95 (ms) ↓",
            metric("bargein", "cancel_to_lease_free_p95_ms"),
        ),
        Row(
            barge,
            "audio handed over after cancel (B / barge-in) ↓",
            metric("bargein", "audio_after_cancel_bytes_mean"),
            digits=0,
        ),
        Row(
            barge,
            "new connections / 100 barge-ins ↓",
            metric("bargein", "new_connections_per_100"),
            digits=0,
        ),
        Row(barge, "next call TTFA p50 (ms) ↓", metric("bargein", "next_ttfa_p50_ms")),
        Row(barge, "next call TTFA p95 (ms) ↓", metric("bargein", "next_ttfa_p95_ms")),
        Row(barge, "errors", metric("bargein", "errors"), digits=0),
        Row(
            words,
            "sentence end → its first audio p50 (ms) ↓",
            metric("incremental", "sentence_latency_p50_ms"),
        ),
        Row(
            words,
            "sentence end → its first audio p95 (ms) ↓",
            metric("incremental", "sentence_latency_p95_ms"),
        ),
        Row(
            words,
            "… p95 - p50 (ms) ↓",
            metric("incremental", "sentence_latency_spread_ms"),
        ),
        Row(words, "… max (ms) ↓", metric("incremental", "sentence_latency_max_ms")),
        Row(words, "errors", metric("incremental", "errors"), digits=0),
    ]


def markdown_table(rows: list[Row], clients: list[str]) -> list[str]:
    peers = [p for p in PEERS if p in clients]
    head = ["scenario", "metric", *clients]
    if "ours" in clients:
        head += [f"ours ÷ {p}" for p in peers]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---", *(["---:"] * (len(head) - 2))]) + "|",
    ]
    for row in rows:
        values = {c: row.get(c) for c in clients}
        if all(v is None for v in values.values()):
            continue
        cells = [
            row.section,
            row.label,
            *(_fmt(values[c], row.digits) for c in clients),
        ]
        if "ours" in clients:
            numeric = "errors" not in row.label
            cells += [
                _ratio(values["ours"], values[p]) if numeric else "" for p in peers
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(
    sums: dict[str, dict[str, Json]], micro: Json | None, clients: list[str]
) -> list[Json]:
    def get(key: str, client: str, name: str) -> float | None:
        value = sums.get(key, {}).get(client, {}).get(name)
        return None if value is None else float(value)

    out: list[Json] = []

    def add(target: str, measured: str, ok: bool | None, note: str = "") -> None:
        status = "n/a" if ok is None else ("met" if ok else "NOT met")
        out.append(
            {"target": target, "measured": measured, "status": status, "note": note}
        )

    ours_cpu = get("warm", "ours", "cpu_ms_per_stream")
    aws_cpu = get("warm", "aws-sdk-polly", "cpu_ms_per_stream")
    js_cpu = get("warm", "js", "cpu_ms_per_stream")
    if ours_cpu is not None and aws_cpu is not None:
        add(
            "client CPU / warm short stream ≤ 1/3 of aws-sdk-polly's",
            f"{ours_cpu:.2f} vs {aws_cpu:.2f} ms ({ours_cpu / aws_cpu:.2f}x)",
            ours_cpu <= aws_cpu / 3,
        )
    else:
        add("client CPU / warm short stream ≤ 1/3 of aws-sdk-polly's", "-", None)
    if ours_cpu is not None and js_cpu is not None:
        add(
            "client CPU / warm short stream ≤ JS SDK's",
            f"{ours_cpu:.2f} vs {js_cpu:.2f} ms ({ours_cpu / js_cpu:.2f}x)",
            ours_cpu <= js_cpu,
        )
    else:
        add("client CPU / warm short stream ≤ JS SDK's", "-", None)

    warm_p50 = {c: get("warm", c, "ttfa_p50_ms") for c in clients}
    known = {c: v for c, v in warm_p50.items() if v is not None}
    ours_ttfa = known.get("ours")
    floor = get("warm", "floor", "ttfa_p50_ms")
    if ours_ttfa is not None and known:
        best_client = min(known, key=lambda c: known[c])
        cpu_first = get("warm", "ours", "cpu_to_first_audio_p50_ms")
        emu = get("warm", "ours", "emulator_cpu_ms_per_stream")
        context = (
            f"best client's TTFA p50: {best_client} {known[best_client]:.2f} ms; "
            f"ours spent {_fmt(cpu_first, 2)} ms of CPU (all threads) before its "
            f"first audio; the emulator spends {_fmt(emu, 2)} ms of CPU per stream"
        )
        if floor is not None:
            overhead = ours_ttfa - floor
            add(
                "warm TTFA p50 overhead ≤ 1 ms over the emulator's response",
                f"ours {ours_ttfa:.2f} ms - floor {floor:.2f} ms = {overhead:+.2f} ms",
                overhead <= 1.0,
                "floor = TTFA p50 of a pre-signed raw h2 request on a warm "
                "connection (benchmarks/workers/floor_h2.py): the emulator's own "
                f"response plus the least client work possible; {context}",
            )
        else:
            overhead = ours_ttfa - known[best_client]
            add(
                "warm TTFA p50 overhead ≤ 1 ms over the emulator's response",
                f"ours {ours_ttfa:.2f} ms - best client {known[best_client]:.2f} ms "
                f"= {overhead:+.2f} ms",
                overhead <= 1.0,
                f"no floor baseline ran: compared with the best client; {context}",
            )
    cold_ttfa = get("cold", "ours", "ttfa_p50_ms")
    if ours_ttfa is not None and cold_ttfa:
        add(
            "warm TTFA ≤ 0.2x cold TTFA (p50)",
            f"{ours_ttfa:.2f} / {cold_ttfa:.2f} ms = {ours_ttfa / cold_ttfa:.2f}",
            ours_ttfa <= 0.2 * cold_ttfa,
        )
    levels = [int(k[1:]) for k in sums if k[0] == "c" and k[1:].isdigit()]
    top = f"c{max(levels)}" if levels else None
    if top is not None and "c8" in sums and "ours" in sums[top]:
        errors = sums[top]["ours"]["errors"] + sums[top]["ours"]["failed_jobs"]
        cpu_top = get(top, "ours", "cpu_ms_per_stream")
        cpu_8 = get("c8", "ours", "cpu_ms_per_stream")
        ok = errors == 0 and cpu_top is not None and cpu_8 is not None
        ratio = cpu_top / cpu_8 if cpu_top is not None and cpu_8 else None
        add(
            f"at {top[1:]} concurrent streams: zero errors, CPU/stream ≤ 1.2x at 8",
            f"{errors} errors; {_fmt(cpu_top, 2)} vs {_fmt(cpu_8, 2)} ms "
            f"({_fmt(ratio, 2)}x)",
            ok and ratio is not None and ratio <= 1.2,
        )
    voice_targets(get, clients, add)
    if micro and micro.get("ok"):
        rate = float(micro["payload_mb_s_64k_16k_pieces"])
        whole = float(micro["payload_mb_s_64k_whole"])
        add(
            "audio payload decode ≥ 500 MB/s (64 KiB events)",
            f"{rate:,.0f} MB/s in 16 KiB pieces; {whole:,.0f} MB/s whole",
            min(rate, whole) >= 500,
        )
    return out


def voice_targets(
    get: Callable[[str, str, str], float | None],
    clients: list[str],
    add: Callable[..., None],
) -> None:
    """The voice-agent targets: incremental text without stalls, and a
    barge-in that keeps the connection."""
    p50 = get("incremental", "ours", "sentence_latency_p50_ms")
    p95 = get("incremental", "ours", "sentence_latency_p95_ms")
    if p50 is not None and p95 is not None:
        add(
            "incremental text: ours p95 within 2 ms of its p50 (no Nagle stalls)",
            f"p50 {p50:.2f} ms, p95 {p95:.2f} ms: {p95 - p50:+.2f} ms",
            p95 - p50 <= 2.0,
        )
        peers = {
            c: v
            for c in clients
            if c != "ours"
            and (v := get("incremental", c, "sentence_latency_p95_ms")) is not None
        }
        if peers:
            add(
                "incremental text: ours p95 below every peer's",
                f"ours {p95:.2f} ms; "
                + ", ".join(f"{c} {v:.2f} ms" for c, v in peers.items()),
                all(p95 < v for v in peers.values()),
            )
    new = get("bargein", "ours", "new_connections")
    calls = get("bargein", "ours", "barge_ins")
    if new is not None and calls:
        add(
            "barge-in: the connection is reused (no new connection)",
            f"{new:.0f} new connection(s) over {calls:.0f} barge-ins and their "
            "next calls",
            new == 0,
        )


def micro_lines(micro: Json | None) -> list[str]:
    if not micro:
        return ["(not run)"]
    if not micro.get("ok"):
        return [f"failed: {micro.get('error')}"]
    rows = [
        (
            "encode + sign one TextEvent (µs/call)",
            micro["encode_sign_text_event_us"],
            1,
        ),
        (
            "… encode only: protocol.text_event (µs/call)",
            micro["encode_text_event_us"],
            1,
        ),
        ("… sign only: EventSigner.envelope (µs/call)", micro["sign_envelope_us"], 1),
        ("sign the request: sign_request (µs/call)", micro["sign_request_us"], 1),
        (
            "decode one 4 KiB AudioEvent: ResponseParser.feed (µs/call)",
            micro["decode_audio_event_4k_us"],
            2,
        ),
        (
            "payload decode, 64 KiB events, one feed per event (MB/s)",
            micro["payload_mb_s_64k_whole"],
            0,
        ),
        (
            "payload decode, 64 KiB events, 16 KiB feeds (MB/s)",
            micro["payload_mb_s_64k_16k_pieces"],
            0,
        ),
    ]
    lines = ["| microbenchmark (ours, in-process, best of 5) | value |", "|---|---:|"]
    lines += [
        f"| {label} | {_fmt(float(value), digits)} |" for label, value, digits in rows
    ]
    return lines


def profile_lines(profile: Json | None, top: int = 15) -> list[str]:
    if not profile:
        return ["(not run; `--profile` to run it in quick mode)"]
    if not profile.get("ok"):
        return [f"failed: {profile.get('error')}"]
    lines = [
        f"{profile['streams']} warm short streams under cProfile "
        f"({profile['errors']} errors). Unprofiled CPU per stream: "
        f"{profile['cpu_ms_per_stream']:.2f} ms, of which "
        f"{profile['main_thread_cpu_ms_per_stream']:.2f} ms on the asyncio thread "
        "(the rest: awscrt's threads, invisible to cProfile). "
        "Per stream, by own time (profiler overhead inflates both columns):",
        "",
        "| function | calls/stream | own µs/stream | cumulative µs/stream |",
        "|---|---:|---:|---:|",
    ]
    streams = int(profile["streams"])
    for entry in profile["top"][:top]:
        lines.append(
            f"| `{entry['function']}` | {entry['calls'] / streams:.1f} | "
            f"{entry['tottime_us_per_stream']:.0f} | "
            f"{entry['cumtime_us_per_stream']:.0f} |"
        )
    return lines


def machine_info() -> Json:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = line.split(":", 1)[1].strip()
                break
    node = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        node = subprocess.run(
            ["node", "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    return {
        "platform": platform.platform(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory": memory,
        "python": sys.version.split()[0],
        "node": node,
    }


def git_info() -> Json:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=10,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain")),
    }


COLORS = {
    "ours": "#1f77b4",
    "aws-sdk-polly": "#ff7f0e",
    "js": "#2ca02c",
    "capo": "#9467bd",
}


class _Chart:
    """The nine panels of ``latest.png`` (matplotlib objects are untyped: Any)."""

    def __init__(
        self,
        sums: dict[str, dict[str, Json]],
        clients: list[str],
        levels: Sequence[int],
    ) -> None:
        self.sums = sums
        self.clients = clients
        self.levels = list(levels)

    def val(self, key: str, client: str, name: str) -> float:
        value = self.sums.get(key, {}).get(client, {}).get(name)
        return float("nan") if value is None else float(value)

    def warm_cold(
        self, ax: Any, metric50: str, metric95: str | None, title: str, unit: str
    ) -> None:
        """Bars per client for warm and cold; p95 as a black tick."""
        self.grouped(
            ax,
            [
                ("warm (same client)", "warm", metric50, metric95),
                ("cold (new client)", "cold", metric50, metric95),
            ],
            self.clients,
        )
        ax.set_title(title)
        ax.set_ylabel(unit)

    def grouped(
        self,
        ax: Any,
        groups: list[tuple[str, str, str, str | None]],
        clients: list[str],
    ) -> None:
        """Per group (label, scenario, p50 metric, p95 metric): a bar per
        client at p50, its p95 as a black tick."""
        width = 0.8 / max(1, len(clients))
        for i, client in enumerate(clients):
            offset = (i - (len(clients) - 1) / 2) * width
            xs = [g + offset for g in range(len(groups))]
            p50 = [self.val(key, client, m50) for _, key, m50, _ in groups]
            ax.bar(xs, p50, width, label=client, color=COLORS.get(client))
            p95 = [
                float("nan") if m95 is None else self.val(key, client, m95)
                for _, key, _, m95 in groups
            ]
            ax.scatter(xs, p95, marker="_", s=300, color="black", zorder=3)
            for x, y, top in zip(xs, p50, p95, strict=True):
                if not math.isnan(y):
                    at = y if math.isnan(top) else max(y, top)
                    ax.annotate(f"{y:.1f}", (x, at), ha="center", va="bottom", size=7)
        ax.set_xticks(range(len(groups)), [label for label, *_ in groups])
        ax.grid(axis="y", alpha=0.3)

    @staticmethod
    def legend_on_top(ax: Any) -> None:
        """The legend in one row above the bars (room made for it)."""
        bottom, top = ax.get_ylim()
        ax.set_ylim(bottom, top * 1.2)
        ax.legend(fontsize=8, loc="upper center", ncol=4)

    def prewarm(self, ax: Any) -> None:
        self.grouped(
            ax,
            [
                ("cold", "prewarm", "cold_ttfa_p50_ms", "cold_ttfa_p95_ms"),
                (
                    "after prewarm(1)",
                    "prewarm",
                    "after_prewarm_ttfa_p50_ms",
                    "after_prewarm_ttfa_p95_ms",
                ),
                ("warm (next call)", "prewarm", "warm_ttfa_p50_ms", "warm_ttfa_p95_ms"),
            ],
            [c for c in self.clients if c == "ours"],
        )
        ax.set_title("First utterance TTFA, fresh client (ours; bar p50, - p95)")
        ax.set_ylabel("ms")
        self.legend_on_top(ax)

    def barge_in(self, ax: Any) -> None:
        shown = [
            c
            for c in self.clients
            if "bargein" in self.sums and c in self.sums["bargein"]
        ]
        self.grouped(
            ax,
            [
                (
                    "cancel → call closed",
                    "bargein",
                    "cancel_to_closed_p50_ms",
                    "cancel_to_closed_p95_ms",
                ),
                ("next call's TTFA", "bargein", "next_ttfa_p50_ms", "next_ttfa_p95_ms"),
            ],
            shown,
        )
        ax.set_title("Barge-in at the first audio chunk (bar p50, - p95)")
        ax.set_ylabel("ms")
        self.legend_on_top(ax)

    def incremental(self, ax: Any) -> None:
        shown = [
            c
            for c in self.clients
            if "incremental" in self.sums and c in self.sums["incremental"]
        ]
        self.grouped(
            ax,
            [
                (
                    "sentence end → its first audio",
                    "incremental",
                    "sentence_latency_p50_ms",
                    "sentence_latency_p95_ms",
                ),
            ],
            shown,
        )
        ax.set_title(
            f"Incremental text, a word / {WORD_INTERVAL_S * 1000:g} ms (bar p50, - p95)"
        )
        ax.set_ylabel("ms")
        self.legend_on_top(ax)

    def long_rate(self, ax: Any) -> None:
        rates = [self.val("long", c, "mb_per_s") for c in self.clients]
        ax.bar(self.clients, rates, color=[COLORS.get(c) for c in self.clients])
        for x, y in enumerate(rates):
            if not math.isnan(y):
                ax.annotate(f"{y:.0f}", (x, y), ha="center", va="bottom", size=8)
        sizes = [
            self.sums.get("long", {}).get(c, {}).get("audio_bytes_per_stream")
            for c in self.clients
        ]
        size = max((float(v) for v in sizes if v), default=0.0)
        ax.set_title(f"One long stream ({size / 1e6:.1f} MB pcm): client MB/s")
        ax.set_ylabel("MB/s")
        ax.grid(axis="y", alpha=0.3)

    def by_level(self, ax: Any, metric: str, title: str, unit: str) -> None:
        keys = [f"c{level}" for level in self.levels]
        for client in self.clients:
            values = [self.val(k, client, metric) for k in keys]
            ax.plot(self.levels, values, "o-", color=COLORS.get(client), label=client)
        if metric == "ttfa_p50_ms":
            for client in self.clients:
                p95 = [self.val(k, client, "ttfa_p95_ms") for k in keys]
                ax.plot(self.levels, p95, "x--", color=COLORS.get(client), alpha=0.5)
            ax.set_yscale("log")
        ax.set_xscale("log", base=2)
        ax.set_xticks(self.levels, [str(level) for level in self.levels])
        ax.set_xlabel("concurrent streams")
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


def write_chart(
    path: Path,
    sums: dict[str, dict[str, Json]],
    clients: list[str],
    levels: Sequence[int],
) -> str | None:
    """The PNG; returns why not, if it cannot be drawn."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional: only for the chart

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return "matplotlib is not installed in .venv"
    chart = _Chart(sums, clients, levels)
    fig, axes = plt.subplots(3, 3, figsize=(16, 14))
    chart.warm_cold(
        axes[0][0],
        "ttfa_p50_ms",
        "ttfa_p95_ms",
        "Time to first audio (bar p50, - p95)",
        "ms",
    )
    floor = sums.get("warm", {}).get("floor", {}).get("ttfa_p50_ms")
    if floor is not None:
        axes[0][0].axhline(
            float(floor),
            color="grey",
            linestyle=":",
            label=f"floor {float(floor):.1f} ms (emulator response)",
        )
    axes[0][0].legend(fontsize=8)
    chart.warm_cold(
        axes[0][1], "cpu_ms_per_stream", None, "Client CPU per short stream", "ms CPU"
    )
    chart.long_rate(axes[0][2])
    chart.by_level(
        axes[1][0], "ttfa_p50_ms", "TTFA vs concurrency (o- p50, x-- p95)", "ms (log)"
    )
    chart.by_level(
        axes[1][1],
        "cpu_ms_per_stream",
        "Client CPU per stream vs concurrency",
        "ms CPU",
    )
    chart.by_level(
        axes[1][2], "streams_per_s", "Throughput vs concurrency", "streams/s"
    )
    chart.prewarm(axes[2][0])
    chart.barge_in(axes[2][1])
    chart.incremental(axes[2][2])
    fig.suptitle(
        "Polly streaming clients vs the local emulator (loopback, pcm 16 kHz; short "
        f"utterance = {len(SHORT_TEXT)} chars, "
        f"{len(SHORT_TEXT) * BYTES_PER_CHARACTER:,} B). Lower is better except "
        "MB/s and streams/s.",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_outputs(
    out_dir: Path,
    *,
    params: Params,
    clients: list[str],
    run: Run,
    emulator: Emulator,
    started: dt.datetime,
    elapsed_s: float,
    load_start: tuple[float, float, float],
) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    if params.mode == "quick":
        ignore = out_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")
    sums = summaries(run)
    boot = startup_summary(run)
    shown = [c for c in clients if c not in run.unavailable or c in run.startup]
    floor = sums.get("warm", {}).get("floor", {}).get("ttfa_p50_ms")
    rows = build_rows(sums, boot, params.levels, floor)
    goal = targets(sums, run.micro, shown)
    machine = machine_info()
    machine["loadavg_start"] = load_start
    machine["loadavg_end"] = os.getloadavg()
    chart_path = out_dir / "latest.png"
    chart_problem = write_chart(chart_path, sums, shown, params.levels)

    md: list[str] = [
        "# Polly streaming clients: benchmark",
        "",
        f"{started:%Y-%m-%d %H:%M} UTC, {params.mode} run "
        f"({run.rounds_done} of {params.rounds} round(s), interleaved), "
        f"{elapsed_s:.0f} s. "
        f"Machine: {machine['cpu']} x {machine['cpus']} CPUs, "
        f"Python {machine['python']}, Node {machine['node'] or '-'}; 1-min load "
        f"{machine['loadavg_start'][0]:.2f} → {machine['loadavg_end'][0]:.2f}.",
        "",
        "Against the local emulator on loopback (its own process; zero synthesis "
        f"delay; pcm {SAMPLE_RATE} Hz, {MS_PER_CHARACTER:g} ms/char = "
        f"{BYTES_PER_CHARACTER} B/char, every stream's size checked). Short "
        f"utterance: {SHORT_TEXT!r} ({len(SHORT_TEXT)} chars, "
        f"{len(SHORT_TEXT) * BYTES_PER_CHARACTER:,} B, 10 audio events). "
        f"Warm: {params.warm_streams} streams/round on one client after "
        f"{params.warm_warmup} warm-up call(s). Cold: a new client per stream, "
        f"{params.cold_streams}/round. Concurrency: "
        + ", ".join(f"{lv}→{params.level_streams[lv]} streams" for lv in params.levels)
        + f" per round. Long: ~{params.long_chars:,} chars in {params.long_events} "
        "text events. Client CPU = the worker process's own rusage (all threads) "
        "over the measured part; emulator CPU from /proc over the same span.",
        "",
        f"Voice agents. Prewarm: {params.prewarm_samples} fresh clients/round "
        "each way, the process's idle connections closed before each: the first "
        "call cold, or after `prewarm(1)`; warm = that client's next call. "
        f"Barge-in: {params.bargein_streams}/round; a {len(BARGE_IN_TEXT)}-char, "
        "six-sentence utterance stopped at its first audio chunk, then a short "
        'call on the same client; "call closed" = the client\'s iteration or '
        "context is over; new connections = sockets to the emulator carrying "
        "these calls that were not open before them (from /proc). Incremental "
        f"text: {params.incremental_streams} stream(s)/round of "
        f"{len(INCREMENTAL_SENTENCES)} sentences "
        f"({len(incremental_words()[0])} words), one word handed to the client "
        f"every {WORD_INTERVAL_S * 1000:g} ms on absolute deadlines; latency = "
        "last word of a sentence handed over → that sentence's first audio byte.",
        "",
        "Clients: "
        + "; ".join(
            f"**{c}** = {CLIENTS[c].title} "
            + ", ".join(f"{k} {v}" for k, v in run.versions.get(c, {}).items())
            for c in shown
        )
        + ".",
        "",
        "Ratio columns: ours ÷ theirs. ↓ rows: below 1 is better for ours; "
        "↑ rows: above 1.",
        "",
        *markdown_table(rows, shown),
        "",
        "## Targets (ours)",
        "",
        "| target | measured | status |",
        "|---|---|---|",
        *(f"| {t['target']} | {t['measured']} | {t['status']} |" for t in goal),
        "",
        *(f"- {t['target']}: {t['note']}" for t in goal if t["note"]),
        "",
        "## Hot path microbenchmarks (ours)",
        "",
        *micro_lines(run.micro),
        "",
        "## Profile of a warm short stream (ours)",
        "",
        *profile_lines(run.profile),
        "",
        "## Notes",
        "",
        "- js: NodeHttp2Handler gives every event-stream request an isolated "
        "HTTP/2 session, so each of its streams pays a TCP + TLS handshake "
        "(warm and cold alike; see its emulator CPU per stream).",
        "- aws-sdk-polly: one client keeps one HTTP/2 connection per endpoint; "
        "all its concurrent streams share it.",
        "- ours: one stream per connection; `pool_size` = concurrency.",
        "- floor (warm only): a pre-signed request and body written at once on a "
        "warm raw h2 connection, read with blocking calls: the emulator's own "
        "response time plus the least client work possible.",
        "- long: the rate is bounded by the emulator (Python h2, one write + "
        "drain per 4 KiB event; compare its CPU with the stream's duration); "
        "client CPU per MB is the client's own figure.",
    ]
    md += [
        f"- {NOT_RUN['prewarm']}.",
        "- barge-in, how each client stops: ours `AudioStream.cancel()` (HTTP/2 "
        "RST_STREAM; the connection goes back to the pool); js an "
        "AbortController on the command (RST_STREAM, and its isolated session "
        "is destroyed; iteration ends without an error); aws-sdk-polly and "
        "capo-polly have no cancel: `DuplexEventStream.close()` / leaving the "
        "`async with`, which stop the application's reading but reset nothing: "
        "the service sends the rest of the audio (and bills it), which the "
        'transport reads and drops. "lease free" is ours alone (its '
        "`pool_stats()`).",
        "- incremental text: each word is its own text event as soon as the "
        "client takes it; capo-polly takes an async iterator of input events, "
        "so it runs this scenario too.",
    ]
    for name, reason in run.unavailable.items():
        md.append(f"- **{name} left out**: {reason}")
    md.extend(f"- {note}" for note in run.skipped)
    for failure in run.job_failures:
        md.append(f"- job failed: {failure}")
    for key, by_client in sums.items():
        for name, summary in by_client.items():
            if summary["error_samples"]:
                samples = "; ".join(
                    f"{count}x {message}"
                    for message, count in summary["error_samples"].items()
                )
                md.append(f"- {key}/{name} errors: {samples}")
    if chart_problem:
        md.append(f"- no chart: {chart_problem}")
    text = "\n".join(md) + "\n"
    (out_dir / "latest.md").write_text(text)

    if run.profile and run.profile.get("ok"):
        parts = [
            "cProfile, by own time\n",
            run.profile["cprofile_by_tottime"],
            "\ncProfile, by cumulative time\n",
            run.profile["cprofile_by_cumulative"],
        ]
        if run.profile.get("pyinstrument"):
            parts += ["\npyinstrument\n", run.profile["pyinstrument"]]
        (out_dir / "latest-profile.txt").write_text("".join(parts))

    document = {
        "meta": {
            "date": started.isoformat(),
            "elapsed_s": elapsed_s,
            "machine": machine,
            "git": git_info(),
            "params": asdict(params),
            "rounds_done": run.rounds_done,
            "skipped": run.skipped,
            "emulator": {"argv": emulator.argv[1:]},
            "short_text": SHORT_TEXT,
            "bytes_per_character": BYTES_PER_CHARACTER,
            "clients": {
                c: {
                    "title": CLIENTS[c].title,
                    "versions": run.versions.get(c, {}),
                    "available": c not in run.unavailable,
                    "reason": run.unavailable.get(c),
                }
                for c in [*clients, *(["floor"] if "floor" in run.startup else [])]
            },
        },
        "summary": sums,
        "startup": boot,
        "targets": goal,
        "micro": run.micro,
        "profile": (
            None
            if not run.profile
            else {k: v for k, v in run.profile.items() if not k.startswith("cprofile")}
        ),
        "job_failures": run.job_failures,
        "rounds": {
            key: {
                name: [
                    {k: v for k, v in job.items() if k != "streams"}
                    | {"n_streams": len(job.get("streams", []))}
                    for job in jobs
                ]
                for name, jobs in by_client.items()
            }
            for key, by_client in run.results.items()
        },
    }
    (out_dir / "latest.json").write_text(json.dumps(document, indent=1) + "\n")
    return text


# Main -------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark ours vs aws-sdk-polly, @aws-sdk/client-polly and "
        "capo-polly against the local emulator."
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run (CI): under a minute"
    )
    parser.add_argument(
        "--clients",
        default=",".join(CHOICES),
        help=f"comma-separated subset of {','.join(CHOICES)} (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="override the rounds")
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument(
        "--profile", action="store_true", default=None, help="profile (quick too)"
    )
    profile.add_argument(
        "--no-profile", dest="profile", action="store_false", help="skip the profile"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: results/)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds the run may take; later rounds are skipped to fit "
        "(default: 540, quick: 50)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _signals_as_exit() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C: through every ``finally``."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = [c for c in clients if c not in CHOICES]
    if unknown or not clients:
        print(
            f"unknown client(s): {', '.join(unknown)}; choose from {', '.join(CHOICES)}"
        )
        return 2
    params = params_for(quick=args.quick, rounds=args.rounds, profile=args.profile)
    out_dir = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    LOGS.mkdir(parents=True, exist_ok=True)
    for old_log in LOGS.glob("worker-*.log"):
        old_log.unlink()  # each run's workers append to fresh logs
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    load_start = os.getloadavg()
    emulator = Emulator(LOGS / "emulator.log")
    with _signals_as_exit():
        try:
            emulator.start()
            url = emulator.info["endpoint_url"]
            say(f"[bench] emulator at {url} (pid {emulator.pid})")
            budget = args.budget or (50.0 if args.quick else 540.0)
            run = run_plan(params, clients, emulator, budget_s=budget)
        except HarnessError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(
                "benchmark interrupted: every process it started is stopped",
                file=sys.stderr,
            )
            return 130
        finally:
            emulator.stop()
    text = write_outputs(
        out_dir,
        params=params,
        clients=clients,
        run=run,
        emulator=emulator,
        started=started,
        elapsed_s=time.perf_counter() - clock,
        load_start=load_start,
    )
    print(text)
    shown = out_dir.resolve()
    where = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
    say(f"[bench] wrote {where}/latest.{{md,json,png}}")
    ran = [c for c in clients if c not in run.unavailable]
    return 0 if "ours" not in clients or "ours" in ran else 1


if __name__ == "__main__":
    sys.exit(main())
